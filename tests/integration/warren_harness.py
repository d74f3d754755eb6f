"""Starts a real `warren serve` on an ephemeral port with a temp data dir and talks to it like a
client would (http.client, raw sockets). Shared by every integration test file."""
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import fcntl
import hashlib
import shutil

BIN_DIR = os.environ.get("WARREN_BIN_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
WARREN = os.path.join(BIN_DIR, "warren")


def shared_images(refs=("busybox:latest",)):
    """Builds the given images once into a cache under the build tree (shared by every test
    file and every run; a file lock keeps parallel CTest runs from building twice) and returns
    the cache's `images/` directory, to be linked as `<data-dir>/images`."""
    cache = os.path.realpath(os.environ.get("WARREN_IT_IMAGE_CACHE") or os.path.join(BIN_DIR, "..", "it-image-cache"))
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for ref in refs:
            name, _, tag = ref.partition(":")
            if os.path.isdir(os.path.join(cache, "images", name, tag or "latest", "rootfs")):
                continue
            r = subprocess.run([WARREN, "image", "build", ref, "--data-dir", cache],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
            if r.returncode != 0:
                raise RuntimeError("warren image build %s failed:\n%s" % (ref, r.stdout.decode(errors="replace")))
    return os.path.join(cache, "images")


class Daemon:
    def __init__(self, data_dir=None, extra_args=(), tls=None, images=None):
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="warren-it-")
            data_dir = self._tmp.name
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.tls = tls  # (cert, key) or None
        self.proc = None
        self.port = None
        self.log_path = os.path.join(data_dir, "daemon.log")
        if images:  # a shared, prebuilt image store (see shared_images)
            link = os.path.join(data_dir, "images")
            if not os.path.lexists(link):
                os.symlink(images, link)

    def start(self, timeout=30):
        args = [WARREN, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"]
        if self.tls:
            args += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        args += self.extra_args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        deadline = time.time() + timeout
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(rb"listening on https?://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("daemon did not start: " + open(self.log_path).read()[-4000:])
        # drain stdout in the background so the daemon never blocks on a full pipe
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        return self

    @property
    def admin_key(self):
        with open(os.path.join(self.data_dir, "admin.key")) as f:
            return f.read().strip()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def close(self):
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def conn(self, timeout=60):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            ctx.check_hostname = False
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, key="admin", headers=None, raw=False, timeout=60):
        """Returns (status, parsed JSON or text, headers)."""
        h = dict(headers or {})
        if key == "admin":
            key = self.admin_key
        if key:
            h["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()
        if raw:
            return r.status, data, hdrs
        ctype = hdrs.get("content-type", "")
        if ctype.startswith("application/json") and data:
            return r.status, json.loads(data), hdrs
        return r.status, data.decode("utf-8", "replace"), hdrs

    def raw(self, payload: bytes, timeout=10):
        """Sends raw bytes, returns everything the server answers until it closes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(payload)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def assert_error(status, body, want_status, want_code):
    assert status == want_status, (status, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert body["error"]["code"] == want_code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


# --- sandboxes ------------------------------------------------------------------------------

TEST_IMAGE = "busybox:latest"


def create_sandbox(d, key="admin", **fields):
    """POST /v1/sandboxes with the test image unless given; asserts 201, returns the object."""
    fields.setdefault("image", TEST_IMAGE)
    status, body, _ = d.request("POST", "/v1/sandboxes", fields, key=key)
    assert status == 201, (status, body)
    return body


def destroy_sandbox(d, sid, key="admin"):
    """DELETE that tolerates an already-gone sandbox; returns (status, body)."""
    status, body, _ = d.request("DELETE", "/v1/sandboxes/" + sid, key=key)
    assert status in (200, 404), (status, body)
    return status, body


class sandbox:
    """`with sandbox(d, mem_mib=64) as sb:` — created on enter, destroyed on exit."""
    def __init__(self, d, key="admin", **fields):
        self.d, self.key, self.fields = d, key, fields

    def __enter__(self):
        self.obj = create_sandbox(self.d, key=self.key, **self.fields)
        return self.obj

    def __exit__(self, *exc):
        destroy_sandbox(self.d, self.obj["id"], key="admin")


def exec_(d, sid, command, key="admin", expect=200, http_timeout=120, **fields):
    """POST .../exec (fields such as timeout, env, cwd, stdin go into the body); asserts the
    status (unless expect is None), returns the body."""
    fields["command"] = command
    status, body, _ = d.request("POST", "/v1/sandboxes/%s/exec" % sid, fields, key=key, timeout=http_timeout)
    if expect is not None:
        assert status == expect, (status, body)
    return body


def sse_events(d, sid, command, key="admin", http_timeout=120, on_open=None, **fields):
    """POST .../exec/stream; yields (event, data dict, seconds since the request was sent) as
    each event arrives. `on_open(response)` sees the response before any event is read."""
    fields["command"] = command
    h = {"Authorization": "Bearer " + (d.admin_key if key == "admin" else key),
         "Content-Type": "application/json"}
    c = d.conn(http_timeout)
    t0 = time.time()
    c.request("POST", "/v1/sandboxes/%s/exec/stream" % sid, body=json.dumps(fields), headers=h)
    r = c.getresponse()
    try:
        if on_open:
            on_open(r)
        assert r.status == 200, (r.status, r.read())
        assert r.getheader("Content-Type", "").startswith("text/event-stream")
        event, data = None, []
        while True:
            line = r.readline()
            if not line:
                return
            line = line.rstrip(b"\r\n").decode()
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and event is not None:
                yield event, json.loads("\n".join(data)), time.time() - t0
                event, data = None, []
    finally:
        c.close()


def daemon_rss_bytes(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def sandbox_state_json(d, sid):
    """The jail driver's own record of a sandbox (init pid, slot, cgroups...)."""
    with open(os.path.join(d.data_dir, "sandboxes", sid, "state.json")) as f:
        return json.load(f)


def cleanup_sandboxes(d):
    """Destroys whatever sandboxes a module left behind (they outlive the daemon by design)."""
    if not d.proc or d.proc.poll() is not None:
        return
    status, body, _ = d.request("GET", "/v1/sandboxes", timeout=30)
    assert status == 200, (status, body)
    for sb in body["sandboxes"]:
        status, resp, _ = d.request("DELETE", "/v1/sandboxes/" + sb["id"], timeout=60)
        if status not in (200, 404):
            print("warning: cannot destroy leftover sandbox %s: %s %s" % (sb["id"], status, resp))


def module_daemon(images, default_image):
    """Body of a module-scoped `d` fixture (`yield from module_daemon(...)`): a daemon over the
    shared image cache, whose leftover sandboxes are destroyed before it stops."""
    dm = Daemon(images=shared_images(images), extra_args=["--default-image", default_image]).start()
    yield dm
    cleanup_sandboxes(dm)
    dm.close()


NETWORK_ERRORS = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|ENETUNREACH|EHOSTUNREACH|"
                            r"network request|request to https?://\S+ failed|socket hang up", re.I)


def tool(name):
    import pytest  # only here: benchmarks import this module without pytest
    path = shutil.which(name)
    if not path:
        pytest.fail("`%s` is not installed (scripts/install-deps.sh installs it)" % name)
    return path


def npm_modules(pkg_dir):
    """node_modules for `pkg_dir`'s package.json + package-lock.json, installed on the host once,
    cached by hash under the build tree (a file lock serialises parallel runs)."""
    import pytest
    npm = tool("npm")
    files = [os.path.join(pkg_dir, f) for f in ("package.json", "package-lock.json")]
    key = hashlib.sha256(b"".join(open(f, "rb").read() for f in files)).hexdigest()[:16]
    root = os.path.realpath(os.environ.get("WARREN_E2E_CACHE") or os.path.join(BIN_DIR, "..", "e2e-cache"))
    d = os.path.join(root, key)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(d, ".complete")):
            return os.path.join(d, "node_modules")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for f in files:
            shutil.copy(f, d)
        env = dict(os.environ, npm_config_cache=os.path.join(root, "npm-cache"), npm_config_update_notifier="false",
                   npm_config_fund="false", npm_config_audit="false")
        # `npm install` on a copy of the committed lock (not `npm ci`: some npm 11 builds write locks
        # without other platforms' optional packages, and then refuse them in `npm ci`).
        r = subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=d, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0:
            shutil.rmtree(d, ignore_errors=True)
            if NETWORK_ERRORS.search(out):
                pytest.skip("npm packages cannot be fetched (npm registry unreachable):\n" + out[-2000:])
            pytest.fail("npm ci failed:\n" + out[-4000:])
        open(os.path.join(d, ".complete"), "w").close()
    return os.path.join(d, "node_modules")


def free_port():
    """A TCP port free on loopback right now (for servers a test or benchmark starts itself)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
