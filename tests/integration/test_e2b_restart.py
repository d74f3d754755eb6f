"""The E2B surface across a daemon `kill -9` (docs/guides/e2b-compat.md), spoken raw — E2B's REST
and envd's Connect-JSON wire format from Python, the bytes the SDK sends: a sandbox created with
an E2B lifetime keeps its id, its `endAt` and its envd access token after the restart, commands
run again through process.Process/Start, and the lifetime still ends it; a short lifetime with
autoPause pauses instead of killing, and connect resumes it with its files."""
import json
import struct
import time

from warren_harness import Daemon, shared_images

IMAGE = "busybox:latest"


def rest(d, key, method, path, body=None):
    return d.request(method, path, body, key=None, headers={"X-API-KEY": key})


def envelope(obj, flags=0):
    data = json.dumps(obj).encode()
    return struct.pack(">BI", flags, len(data)) + data


def run(d, sid, token, cmd):
    """process.Process/Start, server stream: returns (stdout, exit code)."""
    c = d.conn()
    try:
        c.request("POST", "/process.Process/Start", body=envelope(
            {"process": {"cmd": "/bin/sh", "args": ["-c", cmd]}}),
            headers={"Content-Type": "application/connect+json", "E2b-Sandbox-Id": sid,
                     "E2b-Sandbox-Port": "49983", "X-Access-Token": token, "Connect-Timeout-Ms": "30000"})
        r = c.getresponse()
        assert r.status == 200, r.read()
        data = r.read()
    finally:
        c.close()
    out, code, i = b"", None, 0
    import base64
    while i < len(data):
        flags, n = struct.unpack(">BI", data[i:i + 5])
        msg = json.loads(data[i + 5:i + 5 + n])
        i += 5 + n
        if flags & 2:
            assert "error" not in msg, msg
            continue
        ev = msg["event"]
        if "data" in ev and "stdout" in ev["data"]:
            out += base64.b64decode(ev["data"]["stdout"])
        if "end" in ev:
            code = ev["end"].get("exitCode", 0)
    return out.decode(), code


def test_e2b_sandbox_across_kill9_and_autopause():
    d = Daemon(images=shared_images((IMAGE,)), extra_args=["--default-image", IMAGE]).start()
    try:
        s, k, _ = d.request("POST", "/v1/admin/keys", {"tenant": "e2b"})
        key = k["key"]
        s, sb, _ = rest(d, key, "POST", "/v2/sandboxes", {"templateID": "busybox", "timeout": 6})
        assert s == 201, sb
        sid, token = sb["sandboxID"], sb["envdAccessToken"]
        assert run(d, sid, token, "echo before > /root/f; cat /root/f") == ("before\n", 0)
        s, info, _ = rest(d, key, "GET", "/sandboxes/" + sid)
        end_at = info["endAt"]

        d.kill9()
        d.start()
        s, info, _ = rest(d, key, "GET", "/sandboxes/" + sid)
        assert s == 200 and info["state"] == "running" and info["endAt"] == end_at, info
        s, again, _ = rest(d, key, "POST", "/v2/sandboxes/%s/connect" % sid, {})
        assert s == 200 and again["envdAccessToken"] == token, again
        assert run(d, sid, token, "cat /root/f") == ("before\n", 0)
        # The lifetime set before the restart still ends it.
        for _ in range(100):
            s, info, _ = rest(d, key, "GET", "/sandboxes/" + sid)
            if s == 404:
                break
            time.sleep(0.2)
        assert s == 404, info

        # autoPause: the end of the lifetime pauses; connect resumes with the files.
        s, sb, _ = rest(d, key, "POST", "/v2/sandboxes", {"templateID": "busybox", "timeout": 2, "autoPause": True})
        assert s == 201, sb
        sid, token = sb["sandboxID"], sb["envdAccessToken"]
        assert run(d, sid, token, "echo kept > /root/g")[1] == 0
        for _ in range(100):
            s, info, _ = rest(d, key, "GET", "/sandboxes/" + sid)
            if info.get("state") == "paused":
                break
            time.sleep(0.2)
        assert info["state"] == "paused", info
        s, body, _ = rest(d, key, "POST", "/v2/sandboxes/%s/connect" % sid, {"timeout": 60})
        assert s == 201, body
        assert run(d, sid, token, "cat /root/g") == ("kept\n", 0)
        s, _, _ = rest(d, key, "DELETE", "/sandboxes/" + sid)
        assert s == 204
    finally:
        d.close()
