"""`warren admin console` (docs/cli.md) driven inside tmux like a person would: line editing,
history, tab completion of commands and ids, nodes/tree/ps/inspect/top/logs/kill/drain/help, and
its refusal of a tenant key and of no key. Uses its own tmux server socket; every sandbox is
destroyed."""
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from warren_harness import WARREN, create_sandbox, destroy_sandbox

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/install-deps.sh)")


class Tmux:
    def __init__(self, command, env):
        self.sock = "warren-it-%d" % os.getpid()
        self.env = env
        self.tmux("new-session", "-d", "-s", "c", "-x", "160", "-y", "45", command)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock] + list(args), env=self.env, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30).stdout.decode()

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "c", *keys)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "c")

    def wait(self, pattern, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.screen()
            if re.search(pattern, s, re.M):
                return s
            time.sleep(0.1)
        raise AssertionError("%r not on the screen:\n%s" % (pattern, self.screen()))

    def run(self, line, expect, timeout=20):
        """Types a line and waits for `expect` after it; returns the screen text after the line."""
        self.tmux("clear-history", "-t", "c")
        self.keys("C-l")
        self.wait(r"^warren> ?$")
        self.keys(line, "Enter")
        s = self.wait(expect, timeout)
        return s

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def home():
    with tempfile.TemporaryDirectory(prefix="warren-console-home-") as h:
        yield h


def console_env(d, home, key):
    env = dict(os.environ, HOME=home, TERM="xterm-256color", WARREN_API_URL="http://127.0.0.1:%d" % d.port)
    env.pop("WARREN_DATA_DIR", None)
    env["WARREN_API_KEY"] = key
    return env


def test_console_in_tmux(daemon, home):
    sb = create_sandbox(daemon, sandbox_timeout=-1)
    sid = sb["id"]
    victim = create_sandbox(daemon, sandbox_timeout=-1)["id"]
    t = Tmux(WARREN + " admin console", console_env(daemon, home, daemon.admin_key))
    try:
        t.wait(r"warren admin console")
        t.wait(r"^warren> ?$")
        s = t.run("help", r"drain NODE")
        assert "inspect ID" in s and "top" in s
        s = t.run("nodes", r"n1\s+up\s+127\.0\.0\.1:%d" % daemon.port)
        s = t.run("tree", r"sandbox %s" % victim)
        assert re.search(r"^node n1\s+\[up\]", s, re.M), s
        assert re.search(r"^  sandbox %s\s+\[running\].*mailbox \d+.*execs=" % sid, s, re.M), s
        s = t.run("ps", r"%s\s+admin\s+running" % victim)
        assert re.search(r"%s\s+admin\s+running" % sid, s), s
        # tab completion: the command, then the id (from the live tree)
        t.tmux("clear-history", "-t", "c")
        t.keys("C-l")
        t.wait(r"^warren> ?$")
        t.keys("insp", "Tab")
        t.wait(r"warren> inspect ?$")
        t.keys(sid[:10], "Tab")
        t.wait(r"warren> inspect %s ?$" % sid)
        t.keys("Enter")
        s = t.wait(r'"kind": "sandbox"')
        assert '"id": "%s"' % sid in s and '"execs"' in s
        # history: Up brings back the last line, which runs again
        t.keys("C-l")
        t.wait(r"^warren> ?$")
        t.keys("Up")
        t.wait(r"warren> inspect %s" % sid)
        t.keys("C-u")
        # line editing: type, move left, insert
        t.keys("nods")
        t.keys("Left", "e", "Enter")
        t.wait(r"NODE\s+STATE\s+ADDRESS")
        s = t.run("reconnect " + sid, r"sandbox %s: running" % sid, timeout=30)
        s = t.run("logs " + sid, r"no per-sandbox logs")
        s = t.run("drain n1", r"error: unavailable: drain is not built.*needs the cluster")
        s = t.run("drain n7", r"error: not_found: no node n7")
        s = t.run("inspect nosuchid", r"error: .*no actor with id nosuchid")
        s = t.run("frobnicate", r'unknown command "frobnicate"')
        # top: full screen, live; a sandbox created meanwhile appears; q leaves
        t.keys("C-l")
        t.wait(r"^warren> ?$")
        t.keys("top", "Enter")
        t.wait(r"warren top .* sandboxes 2")
        late = create_sandbox(daemon, sandbox_timeout=-1)["id"]
        s = t.wait(r"%s\s+admin\s+running" % late, timeout=15)
        assert "sandboxes 3" in s and "q to quit" in s
        t.keys("q")
        t.wait(r"^warren> ?$")
        # kill: a sandbox is destroyed, and the API agrees
        s = t.run("kill " + victim, r"sandbox %s: destroyed" % victim, timeout=60)
        status, _, _ = daemon.request("GET", "/v1/sandboxes/" + victim)
        assert status == 404
        destroy_sandbox(daemon, late)
        t.keys("quit", "Enter")
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(["tmux", "-L", t.sock, "has-session", "-t", "c"], env=t.env,
                              stderr=subprocess.DEVNULL).returncode != 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the console did not quit:\n" + t.screen())
        with open(os.path.join(home, ".warren_console_history")) as f:
            hist = f.read().replace("\\040", " ")  # libedit's history file escapes spaces
        assert "inspect " + sid in hist and "kill " + victim in hist
    finally:
        t.close()
        destroy_sandbox(daemon, sid)


def test_console_refuses_tenant_key_and_no_key(daemon, home):
    status, body, _ = daemon.request("POST", "/v1/admin/keys", body={"tenant": "acme"})
    tenant_key = body["key"]
    r = subprocess.run([WARREN, "admin", "console"], env=console_env(daemon, home, tenant_key),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert r.returncode == 1, r
    assert b"needs an admin key" in r.stderr and b"forbidden" in r.stderr, r.stderr
    # No key at all: an address the CLI does not take for this machine (so it reads no local key file).
    env = console_env(daemon, home, "")
    r = subprocess.run([WARREN, "admin", "console", "--api-url", "http://[::ffff:127.0.0.1]:%d" % daemon.port],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert r.returncode == 1, r
    assert b"needs an admin key" in r.stderr and b"unauthorized" in r.stderr, r.stderr
