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

BIN_DIR = os.environ.get("WARREN_BIN_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
WARREN = os.path.join(BIN_DIR, "warren")


class Daemon:
    def __init__(self, data_dir=None, extra_args=(), tls=None):
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
