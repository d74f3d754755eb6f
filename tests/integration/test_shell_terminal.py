"""Shell sessions and terminals through the real API (API.md "Shell session", "Terminal";
docs/design/shell.md): one daemon for the module, debian sandboxes (the shell needs bash),
python3-websockets as the client. Every sandbox is destroyed."""
import asyncio
import http.client
import json
import re
import threading
import time

import pytest
import websockets

from warren_harness import (create_sandbox, daemon_rss_bytes, destroy_sandbox, exec_, module_daemon)

IMAGE = "debian:bookworm"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def d():
    yield from module_daemon(("busybox:latest", IMAGE), IMAGE)


@pytest.fixture(scope="module")
def sb(d):
    obj = create_sandbox(d, image=IMAGE)
    yield obj["id"]
    destroy_sandbox(d, obj["id"])


def run_async(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(d, sid, route, query="", **kw):
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    return await websockets.connect("ws://127.0.0.1:%d/v1/sandboxes/%s/%s%s" % (d.port, sid, route, query),
                                    extra_headers={"Authorization": "Bearer " + d.admin_key}, **kw)


class Shell:
    """A shell WebSocket: `await sh.run("cmd")` sends one run and returns its reply."""

    def __init__(self, ws):
        self.ws, self.n = ws, 0

    @classmethod
    async def open(cls, d, sid, **kw):
        return cls(await connect(d, sid, "shell", **kw))

    async def send_run(self, command, timeout=None):
        self.n += 1
        msg = {"op": "run", "id": self.n, "command": command}
        if timeout is not None:
            msg["timeout"] = timeout
        await self.ws.send(json.dumps(msg))
        return self.n

    async def reply(self, wait=60):
        return json.loads(await asyncio.wait_for(self.ws.recv(), wait))

    async def run(self, command, timeout=None, wait=60):
        n = await self.send_run(command, timeout)
        r = await self.reply(wait)
        assert r["id"] == n, r
        return r

    async def ok(self, command, **kw):
        r = await self.run(command, **kw)
        assert "error" not in r and r["exit_code"] == 0, r
        return r

    async def close(self):
        await self.ws.close()


def pid_alive(d, sid, pid):
    """True while /proc/<pid> exists in the sandbox and is not a zombie (seen via a one-shot exec)."""
    r = exec_(d, sid, "s=$(cat /proc/%d/stat 2>/dev/null) || exit 1; case \"$s\" in *') Z '*) exit 1;; esac" % pid)
    return r["exit_code"] == 0


def wait_dead(d, sid, pids, seconds=10):
    deadline = time.time() + seconds
    alive = list(pids)
    while time.time() < deadline:
        alive = [p for p in pids if pid_alive(d, sid, p)]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def assert_run_error(r, want_id, code):
    assert set(r) == {"id", "error"}, r
    assert r["id"] == want_id, r
    assert set(r["error"]) == {"code", "message"}, r
    assert r["error"]["code"] == code and r["error"]["message"], r


# --- shell: state, exact output -------------------------------------------------------------

def test_shell_state_cwd_env_functions_and_jobs_persist_across_runs(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        await sh.ok("cd /tmp && export FOO=bar && LOCAL=loc")
        await sh.ok("greet() { echo \"hello $1 from $(pwd)\"; }; alias ll='echo aliased'")
        r = await sh.ok("sleep 300 & echo $!")
        bg = int(r["stdout"])
        r = await sh.ok("pwd; echo $FOO $LOCAL; greet you; sh -c 'echo child:$FOO'")
        assert r["stdout"] == "/tmp\nbar loc\nhello you from /tmp\nchild:bar\n", r
        r = await sh.ok("ll")
        assert r["stdout"] == "aliased\n", r
        r = await sh.ok("jobs -p; kill -0 %d && echo running" % bg)
        assert r["stdout"] == "%d\nrunning\n" % bg, r
        await sh.ok("kill %1; wait")
        await sh.close()
    run_async(go())


def test_shell_stdout_and_stderr_are_exact_and_apart(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        r = await sh.run("true")
        assert (r["exit_code"], r["stdout"], r["stderr"]) == (0, "", ""), r
        assert isinstance(r["duration_ms"], (int, float)) and r["duration_ms"] >= 0
        r = await sh.run("printf abc")
        assert (r["stdout"], r["stderr"]) == ("abc", ""), r
        r = await sh.run("printf 'x\\n\\n'; printf 'no newline' >&2")
        assert (r["stdout"], r["stderr"]) == ("x\n\n", "no newline"), r
        r = await sh.run("echo out1; echo err1 >&2; echo out2; printf err2 >&2; false")
        assert (r["exit_code"], r["stdout"], r["stderr"]) == (1, "out1\nout2\n", "err1\nerr2"), r
        r = await sh.run("(exit 7)")
        assert r["exit_code"] == 7, r
        r = await sh.run("head -c 3000000 /dev/zero | tr '\\0' a")
        assert r["stdout"] == "a" * 3000000 and r["stderr"] == "", (len(r["stdout"]), r["stderr"][:200])
        # a command that points its own stdout elsewhere for good does not lose later output
        r = await sh.run("exec >/dev/null; echo hidden")
        assert r["stdout"] == "", r
        r = await sh.run("echo visible")
        assert r["stdout"] == "visible\n", r
        await sh.close()
    run_async(go())


def test_shell_invalid_utf8_becomes_replacement_characters(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        r = await sh.ok("printf 'a\\377b\\303\\251c\\200'; printf '\\376x\\303' >&2")
        assert r["stdout"] == "a\ufffdb\u00e9c\ufffd", r
        assert r["stderr"] == "\ufffdx\ufffd", r
        await sh.close()
    run_async(go())


def test_shell_commands_reading_stdin_get_eof_at_once(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        t0 = time.time()
        r = await sh.run("cat; echo cat-done:$?; read -r line; echo read:$?; head -c 10 | wc -c", wait=20)
        assert time.time() - t0 < 5
        assert r["stdout"] == "cat-done:0\nread:1\n0\n", r
        await sh.close()
    run_async(go())


def test_shell_output_that_looks_like_the_framing_cannot_break_it(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        fake = "\\036warren:0123456789abcdef:0\\n"
        r = await sh.run("printf '%s'; printf '%s' >&2; printf '\\036warren:'; echo WARREN_EOF_0123456789abcdef; exit_status=5; (exit 3)"
                         % (fake, fake))
        assert r["exit_code"] == 3, r
        assert r["stdout"] == "\x1ewarren:0123456789abcdef:0\n\x1ewarren:WARREN_EOF_0123456789abcdef\n", r
        assert r["stderr"] == "\x1ewarren:0123456789abcdef:0\n", r
        # a command containing here-document terminators and an unterminated quote
        r = await sh.run("cat <<'WARREN_EOF'\nline\nWARREN_EOF\necho after")
        assert r["stdout"] == "line\nafter\n", r
        r = await sh.run("echo \"unterminated")
        assert r["exit_code"] != 0 and r["stdout"] == "" and "unexpected EOF" in r["stderr"], r
        r = await sh.run("printf '\\036warren'")   # the record's prefix, held back then released
        assert r["stdout"] == "\x1ewarren", r
        r = await sh.run("echo still-framed")
        assert (r["exit_code"], r["stdout"], r["stderr"]) == (0, "still-framed\n", ""), r
        await sh.close()
    run_async(go())


# --- shell: exit, timeout, close ------------------------------------------------------------

def test_shell_exit_42_answers_closed_then_later_runs_answer_shell_closed(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        await sh.ok("echo before")
        r = await sh.run("echo bye; exit 42")
        assert r["exit_code"] == 42 and r.get("closed") is True and r["stdout"] == "bye\n", r
        for _ in range(2):
            r = await sh.run("echo again")
            assert_run_error(r, sh.n, "shell_closed")
        await sh.close()
    run_async(go())


def test_shell_timeout_kills_the_command_and_its_child_but_not_the_shell(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        await sh.ok("cd /tmp && export KEEP=kept")
        t0 = time.time()
        r = await sh.run("echo partial; echo perr >&2; sh -c 'sleep 100' & echo $! > /tmp/child.pid; sleep 100",
                         timeout=1, wait=30)
        took = time.time() - t0
        assert r["id"] == sh.n and r["error"]["code"] == "timeout" and r["error"]["message"], r
        # bash may add its own "Killed" job notice after what the command wrote
        assert r["stdout"] == "partial\n" and r["stderr"].startswith("perr\n"), r
        assert 900 <= r["duration_ms"] < 5000 and took < 6, (r, took)
        assert not r.get("closed"), r
        child = int((await sh.ok("cat /tmp/child.pid"))["stdout"])
        assert wait_dead(d, sb, [child]) == [], "the timed-out run's child %d is alive" % child
        # a busy shell loop (no child process) is interrupted too
        r = await sh.run("while :; do :; done", timeout=1, wait=30)
        assert r["error"]["code"] == "timeout", r
        r = await sh.ok("pwd; echo $KEEP")
        assert r["stdout"] == "/tmp\nkept\n", r
        await sh.close()
    run_async(go())


def test_shell_closing_the_socket_kills_its_background_jobs(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        r = await sh.ok("sleep 1000 & echo $!; (sleep 1001 & echo $!); nohup sleep 1002 >/dev/null 2>&1 & echo $!")
        pids = [int(x) for x in r["stdout"].split()]
        assert len(pids) == 3
        assert all(pid_alive(d, sb, p) for p in pids)
        await sh.close()
        return pids
    pids = run_async(go())
    assert wait_dead(d, sb, pids) == [], "background jobs outlived their shell socket"


def test_two_shells_on_one_sandbox_are_independent(d, sb):
    async def go():
        a = await Shell.open(d, sb)
        b = await Shell.open(d, sb)
        await a.ok("cd /tmp && export X=from-a")
        r = await b.ok("pwd; echo \"[$X]\"")
        assert r["stdout"] != "/tmp\n[from-a]\n" and r["stdout"].endswith("[]\n"), r
        # a slow command in one does not hold up the other
        await a.send_run("sleep 2; echo slow")
        t0 = time.time()
        r = await b.ok("echo fast")
        assert r["stdout"] == "fast\n" and time.time() - t0 < 1.5, r
        r = await a.reply()
        assert r["stdout"] == "slow\n", r
        r = await a.run("exit 3")
        assert r.get("closed") is True
        r = await b.ok("echo b-lives")
        assert r["stdout"] == "b-lives\n"
        await a.close()
        await b.close()
    run_async(go())


def test_shell_pipelined_runs_and_errors_are_answered_in_request_order(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        ws = sh.ws
        await ws.send(json.dumps({"op": "run", "id": "slow", "command": "sleep 0.5; echo slow"}))
        await ws.send("{not json")
        await ws.send(json.dumps({"op": "nope", "id": "bad-op"}))
        for i in range(30):
            await ws.send(json.dumps({"op": "run", "id": i, "command": "echo %d" % i}))
        await ws.send(json.dumps({"op": "run", "id": "no-cmd"}))
        await ws.send(json.dumps({"op": "run", "id": "last", "command": "echo last"}))
        replies = [json.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in range(35)]
        assert [r["id"] for r in replies] == ["slow", None, "bad-op"] + list(range(30)) + ["no-cmd", "last"]
        assert replies[0]["stdout"] == "slow\n"
        for i in range(30):
            assert replies[3 + i]["stdout"] == "%d\n" % i
        assert replies[-1]["stdout"] == "last\n"
        await sh.close()
    run_async(go())


def test_shell_hostile_frames_get_error_replies_and_the_socket_stays_usable(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        ws = sh.ws
        cases = [
            ("{not json", None),
            ("[1, 2]", None),
            ("\"a string\"", None),
            (json.dumps({"op": "frobnicate", "id": 11, "command": "true"}), 11),
            (json.dumps({"id": 12, "command": "true"}), 12),
            (json.dumps({"op": "run", "id": 13}), 13),
            (json.dumps({"op": "run", "id": 14, "command": ""}), 14),
            (json.dumps({"op": "run", "id": 15, "command": 42}), 15),
            (json.dumps({"op": "run", "id": 16, "command": "true", "timeout": "x"}), 16),
            (json.dumps({"op": "run", "id": 17, "command": "true", "timeout": 0}), 17),
            (b"\x00\x01binary", None),
        ]
        for frame, want_id in cases:
            await ws.send(frame)
            assert_run_error(json.loads(await asyncio.wait_for(ws.recv(), 10)), want_id, "bad_request")
        r = await sh.ok("echo usable")
        assert r["stdout"] == "usable\n"
        await sh.close()
    run_async(go())


def test_shell_frame_over_1_mib_closes_with_1009(d, sb):
    async def go():
        sh = await Shell.open(d, sb)
        await sh.ok("true")
        # The daemon may close with 1009 while the frame is still being written: then send()
        # itself sees the close. Either way the close code is what counts.
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            await sh.ws.send(json.dumps({"op": "run", "id": 1, "command": "#" + "x" * (MiB + 10)}))
            await asyncio.wait_for(sh.ws.recv(), 20)
        assert ei.value.code == 1009, ei.value
    run_async(go())
    s, body, _ = d.request("GET", "/healthz", key=None)
    assert s == 200


def test_shell_client_that_never_reads_keeps_daemon_memory_bounded(d, sb):
    """200 runs of 2 MB output each (400 MB of replies) sent without reading a single reply: the
    daemon must hold back (pause reading / the shell), not buffer it all."""
    base = daemon_rss_bytes(d)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], daemon_rss_bytes(d))
            time.sleep(0.02)

    async def go():
        # max_queue=1 and a small read limit: the client library stops reading the socket too
        sh = await Shell.open(d, sb, max_queue=1, read_limit=2 ** 14, write_limit=2 ** 14)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        cmd = "head -c 2000000 /dev/zero | tr '\\0' a"
        for _ in range(200):
            await sh.send_run(cmd)
        await asyncio.sleep(6)  # plenty of time for the daemon to run every command if it would
        loop = asyncio.get_running_loop()
        t0 = time.time()
        s, _, _ = await loop.run_in_executor(None, lambda: d.request("GET", "/healthz", key=None, timeout=10))
        assert s == 200 and time.time() - t0 < 2
        s, r, _ = await loop.run_in_executor(None, lambda: d.request("POST", "/v1/sandboxes/%s/exec" % sb,
                                                                     {"command": "echo ok"}, timeout=10))
        assert s == 200 and r["stdout"] == "ok\n"
        # reading now gets the replies in order, intact
        for i in range(3):
            r = await sh.reply()
            assert r["id"] == i + 1 and len(r["stdout"]) == 2000000, {k: v for k, v in r.items() if k != "stdout"}
        sh.ws.transport.abort()

    try:
        run_async(go(), timeout=120)
    finally:
        stop.set()
    growth = (peak[0] - base) / MiB
    print("never-reading shell client: daemon VmRSS baseline %.1f MiB, peak growth %.1f MiB" % (base / MiB, growth))
    assert growth < 64, "daemon RSS grew by %.1f MiB with an unread shell" % growth
    s, _, _ = d.request("GET", "/healthz", key=None)
    assert s == 200


# --- terminal -------------------------------------------------------------------------------

class Term:
    def __init__(self, ws):
        self.ws, self.buf = ws, b""

    async def send(self, data: bytes):
        await self.ws.send(data)

    async def expect(self, pattern: bytes, wait=15):
        """Reads binary frames until `pattern` (a regex) matches the output since the last match."""
        deadline = time.time() + wait
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.time()
            assert left > 0, "terminal: %r not seen in %r" % (pattern, self.buf[-2000:])
            frame = await asyncio.wait_for(self.ws.recv(), left)
            assert isinstance(frame, bytes), "terminal output must come in binary frames: %r" % frame
            self.buf += frame

    async def cmd(self, line: str, wait=15):
        """Runs a line in the terminal's shell; returns what it printed before the end marker."""
        await self.send(line.encode() + b"; echo END$((6*7))\r")
        m = await self.expect(rb"(?s)\r?\n(.*?)END42\r?\n", wait)
        return m.group(1)


def test_terminal_is_a_real_pty_with_resize_and_job_control(d, sb):
    async def go():
        t = Term(await connect(d, sb, "pty", "?cols=100&rows=30"))
        assert b"/dev/pts/" in await t.cmd("tty")
        assert b"30 100" in await t.cmd("stty size")
        await t.ws.send(json.dumps({"op": "resize", "cols": 120, "rows": 40}))
        await asyncio.sleep(0.2)
        assert b"40 120" in await t.cmd("stty size")
        out = await t.cmd("sleep 100 & jobs")
        assert re.search(rb"\[1\]\+?\s+Running\s+sleep 100 &", out), out
        # Ctrl-Z stops the foreground job: job control works
        await t.send(b"sleep 200\r")
        await asyncio.sleep(0.5)
        await t.send(b"\x1a")
        await t.expect(rb"Stopped\s+sleep 200")
        out = await t.cmd("jobs")
        assert b"Running" in out and b"Stopped" in out, out
        await t.cmd("kill -9 %1 %2")
        await t.ws.close()
    run_async(go())


def test_terminal_binary_frames_both_ways(d, sb):
    async def go():
        t = Term(await connect(d, sb, "pty"))
        await t.cmd("stty raw -echo")
        await t.send(b"head -c 4 | od -An -tx1; printf '\\377\\376\\n'; echo END$((6*7))\r")
        await asyncio.sleep(0.3)
        await t.send(b"\xff\x00\xc3\x01")  # not UTF-8, NUL included, as one binary frame
        m = await t.expect(rb"(?s)(.*?)END42")
        assert b"ff 00 c3 01" in m.group(1), m.group(1)
        assert b"\xff\xfe" in m.group(1), m.group(1)
        await t.ws.close()
    run_async(go())


def test_terminal_exit_closes_the_socket_with_the_status(d, sb):
    async def go():
        ws = await connect(d, sb, "pty", "?command=" + "sh")
        await ws.send(b"exit 5\n")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            while True:
                await asyncio.wait_for(ws.recv(), 15)
        assert ei.value.code == 1000 and ei.value.reason == "exit 5", ei.value
    run_async(go())


def test_terminal_closing_the_socket_kills_its_processes(d, sb):
    async def go():
        t = Term(await connect(d, sb, "pty"))
        out = await t.cmd("sleep 1000 & echo PID=$!; (sleep 1001 & echo PID=$!)")
        pids = [int(x) for x in re.findall(rb"PID=(\d+)", out)]
        await t.send(b"echo FG=$$; sleep 1002\r")
        m = await t.expect(rb"FG=(\d+)")
        pids.append(int(m.group(1)))
        await asyncio.sleep(0.3)
        await t.ws.close()
        return pids
    pids = run_async(go())
    assert len(pids) == 3
    assert wait_dead(d, sb, pids) == [], "terminal processes outlived the socket"
    r = exec_(d, sb, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done | grep -c '^sleep 100[012]' || true")
    assert r["stdout"].strip() == "0", r


def test_terminal_bad_dimensions_are_400(d, sb):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    c.request("GET", "/v1/sandboxes/%s/pty?cols=0" % sb, headers={
        "Authorization": "Bearer " + d.admin_key, "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 400 and body["error"]["code"] == "bad_request", body
    c.close()
