"""The jail driver's limits and isolation, seen from inside a sandbox and from the host: disk,
memory and pids caps hold without hurting the node; a sandbox sees only itself (processes,
files, network) and its root is an unprivileged uid on the host."""
import os
import socket
import threading
import time
import uuid

import pytest

from warren_harness import create_sandbox, destroy_sandbox, exec_, sandbox, sandbox_state_json


def healthy(daemon):
    return daemon.request("GET", "/healthz", key=None, timeout=10)[0] == 200


def eth0_ip(daemon, sid):
    out = exec_(daemon, sid, "ip -4 -o addr show eth0")["stdout"]
    return out.split("inet ")[1].split("/")[0]


def gateway(daemon, sid):
    out = exec_(daemon, sid, "ip route show default")["stdout"]
    return out.split("via ")[1].split()[0]


def cgroup_file(sid, controller, name):
    """A sandbox's cgroup file on the host: v1 hierarchy of the hybrid layout or unified v2."""
    for base in ("/sys/fs/cgroup/%s/warren/%s" % (controller, sid), "/sys/fs/cgroup/warren/%s" % sid):
        p = os.path.join(base, name)
        if os.path.exists(p):
            return p
    return None


# --- limits -----------------------------------------------------------------------------------

def test_writing_past_disk_mib_gives_enospc_inside_and_the_host_is_untouched(daemon):
    with sandbox(daemon, disk_mib=64) as sb:
        r = exec_(daemon, sb["id"], "dd if=/dev/zero of=/root/fill bs=1M count=200", timeout=60)
        assert r["exit_code"] != 0, r
        assert "No space left" in r["stderr"], r
        # the host side: the scratch image never grows past the cap
        img = os.path.join(daemon.data_dir, "scratch", sb["id"] + ".img")
        if os.path.exists(img):
            assert os.stat(img).st_size <= 64 * 1024 * 1024
            assert os.stat(img).st_blocks * 512 <= 64 * 1024 * 1024
        assert healthy(daemon)
        # the sandbox still works; freeing space makes writes work again
        r = exec_(daemon, sb["id"], "rm /root/fill && echo ok > /root/small && cat /root/small")
        assert r["stdout"] == "ok\n", r
        status, stats, _ = daemon.request("DELETE", "/v1/sandboxes/" + sb["id"])
        assert status == 200 and stats["disk_used_bytes"] < 64 * 1024 * 1024


def test_memory_hog_is_oom_killed_and_the_sandbox_keeps_answering(daemon):
    with sandbox(daemon, mem_mib=64) as sb:
        t0 = time.time()
        # tail must hold the whole newline-free "line" in memory: it grows until killed
        r = exec_(daemon, sb["id"], "head -c 300m /dev/zero | tail >/dev/null; echo rc=$?", timeout=60)
        assert time.time() - t0 < 30
        assert r["stdout"] in ("rc=137\n",), r  # SIGKILL by the OOM killer
        assert exec_(daemon, sb["id"], "echo still here")["stdout"] == "still here\n"
        assert healthy(daemon)
        limit = cgroup_file(sb["id"], "memory", "memory.limit_in_bytes") or \
            cgroup_file(sb["id"], "memory", "memory.max")
        assert limit and int(open(limit).read()) == 64 * 1024 * 1024
        status, stats, _ = daemon.request("DELETE", "/v1/sandboxes/" + sb["id"])
        assert status == 200
        assert 32 * 1024 * 1024 < stats["mem_peak_bytes"] <= 64 * 1024 * 1024, stats


def test_fork_bomb_fails_inside_and_the_node_stays_healthy(daemon):
    sb = create_sandbox(daemon)
    try:
        # bounded: forking past the pids limit fails inside the sandbox
        r = exec_(daemon, sb["id"], "i=0; while [ $i -lt 1500 ]; do sleep 60 & i=$((i+1)); done; "
                  "echo spawned $i", timeout=60)
        assert "can't fork" in r["stderr"] or "Resource temporarily unavailable" in r["stderr"], \
            (r["stdout"], r["stderr"][-500:])
        pids = cgroup_file(sb["id"], "pids", "pids.current")
        if pids:
            assert int(open(pids).read()) <= 1024 + 1
        exec_(daemon, sb["id"], "kill -9 -1; true", expect=None)
        # unbounded: the classic bomb, left running
        t0 = time.time()
        r = exec_(daemon, sb["id"], "f() { f | f & }; f; sleep 2; echo survived", timeout=5, expect=None)
        assert healthy(daemon)
        assert time.time() - t0 < 30
        for _ in range(5):
            assert healthy(daemon)
            time.sleep(0.2)
        if pids:
            assert int(open(pids).read()) <= 1024 + 1
    finally:
        t0 = time.time()
        status, stats, _ = daemon.request("DELETE", "/v1/sandboxes/" + sb["id"], timeout=60)
    assert status == 200, stats
    assert time.time() - t0 < 20
    assert healthy(daemon)
    assert cgroup_file(sb["id"], "pids", "pids.current") is None  # the cgroup is gone


def test_vcpus_becomes_a_cpu_quota(daemon):
    with sandbox(daemon, vcpus=2) as sb:
        q = cgroup_file(sb["id"], "cpu", "cpu.cfs_quota_us")
        if q:
            assert int(open(q).read()) == 200000
        else:
            m = cgroup_file(sb["id"], "cpu", "cpu.max")
            assert m and open(m).read().split()[0] == "200000"


# --- isolation --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(daemon):
    a = create_sandbox(daemon, sandbox_timeout=-1)
    b = create_sandbox(daemon, sandbox_timeout=-1)
    yield a, b
    destroy_sandbox(daemon, a["id"])
    destroy_sandbox(daemon, b["id"])


def test_sandbox_sees_only_its_own_processes(daemon, pair):
    sid = pair[0]["id"]
    r = exec_(daemon, sid, "ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo; "
              "cat /proc/1/cmdline | tr '\\0' ' '")
    pids_line, cmdline = r["stdout"].split("\n")[:2]
    pids = [int(p) for p in pids_line.split()]
    assert pids[0] == 1 and len(pids) <= 6, pids  # the agent, the shell and its pipeline
    assert cmdline.startswith("warren-agent"), cmdline
    # none of the host's processes, e.g. the daemon itself, is visible
    r = exec_(daemon, sid, "ps -o comm")
    assert "warren-agent" in r["stdout"]
    assert "warren" not in r["stdout"].replace("warren-agent", "")
    assert "systemd" not in r["stdout"] and "python" not in r["stdout"]


def test_sandbox_cannot_see_host_files(daemon, pair):
    marker = "/tmp/warren-it-marker-" + uuid.uuid4().hex
    with open(marker, "w") as f:
        f.write("host secret")
    try:
        r = exec_(daemon, pair[0]["id"], "cat %s; ls %s; ls /work /etc/warren %s 2>&1; echo rc=$?"
                  % (marker, daemon.data_dir, daemon.data_dir))
        assert "host secret" not in r["stdout"]
        assert r["exit_code"] == 0 and "No such file" in r["stderr"] + r["stdout"]
        assert "admin.key" not in r["stdout"]
        # the root is the image, not the host
        r = exec_(daemon, pair[0]["id"], "ls /; readlink /bin/sh")
        assert "busybox" in r["stdout"]
    finally:
        os.unlink(marker)


def test_hostname_is_the_sandbox_id(daemon, pair):
    sid = pair[0]["id"]
    assert exec_(daemon, sid, "hostname; cat /etc/hostname")["stdout"] == sid + "\n" + sid + "\n"


def test_sandbox_root_is_an_unprivileged_uid_on_the_host(daemon, pair):
    sid = pair[0]["id"]
    assert exec_(daemon, sid, "id -u")["stdout"] == "0\n"
    init_pid = sandbox_state_json(daemon, sid)["init_pid"]
    with open("/proc/%d/cmdline" % init_pid, "rb") as f:
        assert f.read().split(b"\0")[0].endswith(b"warren-agent")
    with open("/proc/%d/uid_map" % init_pid) as f:
        inside, outside, count = (int(x) for x in f.read().split())
    assert inside == 0 and outside >= 0x10000 and count <= 65536, (inside, outside, count)
    with open("/proc/%d/status" % init_pid) as f:
        uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
    assert all(int(u) == outside for u in uids), uids  # root inside = that uid outside, not 0
    # two sandboxes never share a host uid range
    other = sandbox_state_json(daemon, pair[1]["id"])["init_pid"]
    with open("/proc/%d/uid_map" % other) as f:
        assert int(f.read().split()[1]) != outside


def test_sandbox_cannot_reach_another_sandbox(daemon, pair):
    a, b = pair[0]["id"], pair[1]["id"]
    ip_b = eth0_ip(daemon, b)
    assert ip_b != eth0_ip(daemon, a)
    # a listener in b (busybox httpd daemonizes, so it outlives the exec that starts it)
    exec_(daemon, b, "mkdir -p /root/www && echo hello-from-b > /root/www/index.html && httpd -p 7777 -h /root/www")
    get = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 %s 7777; echo rc=$?" % ip_b
    # control: b reaches its own listener on its own address
    deadline = time.time() + 5
    while "hello-from-b" not in exec_(daemon, b, get)["stdout"]:
        assert time.time() < deadline, "the listener in b never answered b itself"
        time.sleep(0.1)
    # a cannot: neither TCP nor ICMP
    t0 = time.time()
    r = exec_(daemon, a, get + "; ping -c 1 -W 1 %s >/dev/null 2>&1; echo ping=$?" % ip_b, timeout=20)
    assert "hello-from-b" not in r["stdout"]
    assert "rc=0" not in r["stdout"] and "ping=0" not in r["stdout"], r
    assert time.time() - t0 < 15


def test_sandbox_cannot_reach_host_listeners_the_api_or_its_gateway(daemon, pair):
    sid = pair[0]["id"]
    gw = gateway(daemon, sid)
    # a host listener on every address (the daemon itself listens on 127.0.0.1 only)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept_loop():
        while not stop.is_set():
            try:
                c, addr = srv.accept()
                accepted.append(addr)
                c.sendall(b"host-listener\n")
                c.close()
            except socket.timeout:
                pass
    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()
    try:
        # control: the host reaches its own listener on the gateway address
        with socket.create_connection((gw, port), timeout=2) as c:
            assert c.recv(100) == b"host-listener\n"
        n_control = len(accepted)
        r = exec_(daemon, sid,
                  "nc -w 2 {gw} {p} </dev/null; echo hostport=$?; "
                  "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 {api}; echo api_lo=$?; "
                  "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {gw} {api}; echo api_gw=$?; "
                  "ping -c 1 -W 1 {gw} >/dev/null 2>&1; echo ping=$?".format(gw=gw, p=port, api=daemon.port),
                  timeout=30)
        out = r["stdout"]
        assert "host-listener" not in out and "ok" not in out.replace("=", " ").split(), out
        for probe in ("hostport", "api_lo", "api_gw", "ping"):
            assert "%s=0" % probe not in out, out
        time.sleep(0.3)
        assert len(accepted) == n_control, accepted  # nothing from the sandbox got through
    finally:
        stop.set()
        t.join()
        srv.close()


def test_seccomp_and_capabilities_refuse_mount_inside(daemon, pair):
    r = exec_(daemon, pair[0]["id"], "mkdir -p /mnt/x && mount -t tmpfs none /mnt/x; echo rc=$?")
    assert "rc=0" not in r["stdout"], r
    r = exec_(daemon, pair[0]["id"], "unshare -U true; echo rc=$?")
    assert "rc=0" not in r["stdout"], r
