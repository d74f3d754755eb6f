"""Sandboxes outlive their daemon: after `kill -9` (or SIGTERM) of `warren serve`, a restarted
daemon on the same data dir re-adopts every sandbox still alive (same id, exec works, its files
intact) and marks the ones that died meanwhile `lost`; a lost one can still be deleted."""
import os
import signal
import time


from warren_harness import assert_error, create_sandbox, destroy_sandbox, exec_, sandbox_state_json


def agent_alive(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0].endswith(b"warren-agent")
    except FileNotFoundError:
        return False


def restart(daemon, sig=signal.SIGKILL):
    daemon.stop(sig)
    assert daemon.proc.returncode is not None
    daemon.start()


def wait_state(daemon, sid, want, within=20):
    deadline = time.time() + within
    while True:
        status, body, _ = daemon.request("GET", "/v1/sandboxes/" + sid)
        if status == 200 and body["state"] == want:
            return body
        assert time.time() < deadline, (status, body)
        time.sleep(0.1)


def test_sandbox_survives_daemon_kill9_and_is_readopted(daemon):
    before = create_sandbox(daemon, sandbox_timeout=-1)
    sid = before["id"]
    try:
        exec_(daemon, sid, "echo precious > /root/keep; echo tmp > /tmp/t")
        init_pid = sandbox_state_json(daemon, sid)["init_pid"]
        restart(daemon, signal.SIGKILL)
        assert agent_alive(init_pid)  # the daemon's death did not take the sandbox with it
        after = wait_state(daemon, sid, "running")
        for k in ("id", "image", "created_at", "create_ms", "vcpus", "mem_mib", "node"):
            assert after[k] == before[k], k
        r = exec_(daemon, sid, "cat /root/keep /tmp/t; hostname")
        assert r["stdout"] == "precious\ntmp\n%s\n" % sid
        assert sandbox_state_json(daemon, sid)["init_pid"] == init_pid  # the same sandbox, not a new one
        status, body, _ = daemon.request("GET", "/v1/sandboxes")
        assert [s["state"] for s in body["sandboxes"] if s["id"] == sid] == ["running"]
        # a sandbox created after the restart gets its own address and uid range
        with_new = create_sandbox(daemon)
        try:
            a = exec_(daemon, sid, "ip -4 -o addr show eth0")["stdout"].split()[3]
            b = exec_(daemon, with_new["id"], "ip -4 -o addr show eth0")["stdout"].split()[3]
            assert a != b
        finally:
            destroy_sandbox(daemon, with_new["id"])
        status, stats, _ = daemon.request("DELETE", "/v1/sandboxes/" + sid)
        assert status == 200 and stats["uptime_ms"] > 0, stats
        assert not agent_alive(init_pid)
    finally:
        destroy_sandbox(daemon, sid)


def test_sandbox_survives_a_graceful_daemon_restart(daemon):
    sid = create_sandbox(daemon, sandbox_timeout=-1)["id"]
    try:
        exec_(daemon, sid, "echo v1 > /root/f")
        restart(daemon, signal.SIGTERM)
        wait_state(daemon, sid, "running")
        assert exec_(daemon, sid, "cat /root/f")["stdout"] == "v1\n"
    finally:
        destroy_sandbox(daemon, sid)


def test_detached_process_survives_the_daemon_but_exec_streams_do_not(daemon):
    sid = create_sandbox(daemon, sandbox_timeout=-1)["id"]
    try:
        # detached (own session, not tied to an exec stream): keeps running across the restart
        exec_(daemon, sid, "setsid sh -c 'while :; do date +%s > /root/beat; sleep 0.2; done' "
              "</dev/null >/dev/null 2>&1 &")
        time.sleep(0.5)
        restart(daemon, signal.SIGKILL)
        wait_state(daemon, sid, "running")
        r1 = exec_(daemon, sid, "cat /root/beat")["stdout"]
        time.sleep(1.3)
        r2 = exec_(daemon, sid, "cat /root/beat")["stdout"]
        assert int(r2) > int(r1), (r1, r2)  # still beating
    finally:
        destroy_sandbox(daemon, sid)


def test_sandbox_killed_while_the_daemon_was_down_comes_back_lost_and_can_be_deleted(daemon):
    live = create_sandbox(daemon, sandbox_timeout=-1)
    dead = create_sandbox(daemon, sandbox_timeout=-1)
    try:
        dead_pid = sandbox_state_json(daemon, dead["id"])["init_pid"]
        assert agent_alive(dead_pid)
        daemon.kill9()
        os.kill(dead_pid, signal.SIGKILL)  # the sandbox's PID 1 (host view): the whole sandbox dies
        deadline = time.time() + 5
        while agent_alive(dead_pid):
            assert time.time() < deadline
            time.sleep(0.05)
        daemon.start()
        wait_state(daemon, live["id"], "running")
        lost = wait_state(daemon, dead["id"], "lost")
        assert lost["id"] == dead["id"] and lost["image"] == dead["image"]
        status, body, _ = daemon.request("GET", "/v1/sandboxes")
        states = {s["id"]: s["state"] for s in body["sandboxes"]}
        assert states[dead["id"]] == "lost" and states[live["id"]] == "running"
        # nothing runs in it
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/exec" % dead["id"], {"command": "true"})
        assert status in (404, 409), body
        # the survivor is unaffected
        assert exec_(daemon, live["id"], "echo ok")["stdout"] == "ok\n"
        # a sandbox created meanwhile may take the lost one's released slot
        newer = create_sandbox(daemon, sandbox_timeout=-1)
        # the lost one can be deleted, once
        status, stats, _ = daemon.request("DELETE", "/v1/sandboxes/" + dead["id"])
        assert status == 200, stats
        # ... without freeing that slot again: the next sandbox gets an address of its own
        newest = create_sandbox(daemon, sandbox_timeout=-1)
        try:
            addrs = [exec_(daemon, s, "ip -4 -o addr show eth0")["stdout"].split()[3]
                     for s in (live["id"], newer["id"], newest["id"])]
            assert len(set(addrs)) == 3, addrs
        finally:
            destroy_sandbox(daemon, newer["id"])
            destroy_sandbox(daemon, newest["id"])
        assert set(stats) == {"cpu_ms", "mem_peak_bytes", "disk_used_bytes", "uptime_ms"}
        status, body, _ = daemon.request("DELETE", "/v1/sandboxes/" + dead["id"])
        assert_error(status, body, 404, "not_found")
        status, body, _ = daemon.request("GET", "/v1/sandboxes/" + dead["id"])
        assert_error(status, body, 404, "not_found")
        # and its host resources are gone (run dir, scratch disk)
        assert not os.path.exists(os.path.join(daemon.data_dir, "sandboxes", dead["id"]))
        assert not os.path.exists(os.path.join(daemon.data_dir, "scratch", dead["id"] + ".img"))
    finally:
        destroy_sandbox(daemon, live["id"])
        destroy_sandbox(daemon, dead["id"])


def test_lost_sandbox_stays_lost_across_another_restart(daemon):
    dead = create_sandbox(daemon, sandbox_timeout=-1)
    try:
        pid = sandbox_state_json(daemon, dead["id"])["init_pid"]
        daemon.kill9()
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        daemon.start()
        wait_state(daemon, dead["id"], "lost")
        restart(daemon, signal.SIGKILL)
        wait_state(daemon, dead["id"], "lost")
    finally:
        destroy_sandbox(daemon, dead["id"])
    status, body, _ = daemon.request("GET", "/v1/sandboxes/" + dead["id"])
    assert_error(status, body, 404, "not_found")
