"""The admin actor console's API (API.md "Admin"; docs/guides/operations-console.md) against a
real daemon: the supervision tree with every actor kind and its counters, the actions on actors,
the events WebSocket, and the refusals of a tenant key and of no key. Every sandbox is
destroyed."""
import asyncio
import http.client
import json
import re
import time

import pytest
import websockets

from warren_harness import assert_error, create_sandbox, destroy_sandbox, exec_, module_daemon

IMAGE = "debian:bookworm"   # the shell needs bash; python3 serves a port
WEB_PORT = 8000


@pytest.fixture(scope="module")
def d():
    yield from module_daemon(("busybox:latest", IMAGE), IMAGE)


@pytest.fixture(scope="module")
def tenant(d):
    status, body, _ = d.request("POST", "/v1/admin/keys", body={"tenant": "acme"})
    assert status == 201, body
    return body


def run_async(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def ws_connect(d, path, key="admin"):
    headers = {"Authorization": "Bearer " + (d.admin_key if key == "admin" else key)} if key else {}
    return await websockets.connect("ws://127.0.0.1:%d%s" % (d.port, path), extra_headers=headers,
                                    max_size=None, ping_interval=None)


def tree(d):
    status, body, _ = d.request("GET", "/v1/admin/actors")
    assert status == 200, body
    return body


def entries(t):
    """Every entry of a tree as {id: (entry, parent id)}."""
    out = {}

    def walk(e, parent):
        out[e["id"]] = (e, parent)
        for c in e.get("children", []):
            walk(c, e["id"])
    for n in t["nodes"]:
        walk(n, None)
    return out


def wait_for(pred, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def action(d, aid, verb, key="admin"):
    return d.request("POST", "/v1/admin/actors/%s/%s" % (aid, verb), body={}, key=key)


def proxied_get(d, sid, port, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        c.request("GET", path, headers={"Host": "%d-%s.localhost:%d" % (port, sid, d.port)})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def check_common(e):
    for f in ("kind", "id", "state", "started_at", "age_s", "mailbox", "restarts", "counters", "children"):
        assert f in e, (f, e)
    assert isinstance(e["age_s"], int) and e["age_s"] >= 0
    assert isinstance(e["restarts"], int)


def test_tree_has_every_actor_kind_with_its_counters(d):
    sb = create_sandbox(d, image=IMAGE, disk_mib=256, sandbox_timeout=-1)
    sid = sb["id"]
    try:
        # exec: counted, output counted
        r = exec_(d, sid, "head -c 5000 /dev/zero | tr '\\0' x")
        assert r["exit_code"] == 0 and len(r["stdout"]) == 5000
        # a port with a server, exposed and requested through its URL
        exec_(d, sid, "cd /tmp && (setsid nohup python3 -m http.server %d --bind 127.0.0.1 >/tmp/web.log 2>&1 &)" % WEB_PORT)
        status, body, _ = d.request("POST", "/v1/sandboxes/%s/expose" % sid, {"port": WEB_PORT})
        assert status in (200, 201), body
        wait_for(lambda: proxied_get(d, sid, WEB_PORT)[0] == 200, "the web server in the sandbox")
        # a checkpoint
        status, snap, _ = d.request("POST", "/v1/sandboxes/%s/checkpoints" % sid, {"name": "console"})
        assert status == 201, snap

        async def with_streams():
            shell = await ws_connect(d, "/v1/sandboxes/%s/shell" % sid)
            pty = await ws_connect(d, "/v1/sandboxes/%s/pty" % sid)
            try:
                await shell.send(json.dumps({"op": "run", "id": 1, "command": "echo hello-from-shell"}))
                rep = json.loads(await asyncio.wait_for(shell.recv(), 60))
                assert rep["stdout"] == "hello-from-shell\n", rep
                await pty.send(b"echo pty-$((6*7))\n")
                seen = b""
                while b"pty-42" not in seen:
                    m = await asyncio.wait_for(pty.recv(), 30)
                    seen += m if isinstance(m, bytes) else m.encode()
                return await asyncio.get_running_loop().run_in_executor(None, tree, d)
            finally:
                await shell.close()
                await pty.close()
        t = run_async(with_streams())
        all_ = entries(t)
        node = t["nodes"][0]
        check_common(node)
        assert node["kind"] == "node" and node["id"] == "n1" and node["state"] == "up"
        assert isinstance(node["mailbox"], int)
        s, parent = all_[sid]
        check_common(s)
        assert parent == "n1" and s["kind"] == "sandbox" and s["state"] == "running"
        assert isinstance(s["mailbox"], int) and s["image"] == IMAGE
        c = s["counters"]
        assert c["execs"] >= 2
        assert c["bytes_out"] >= 5000 + len("hello-from-shell")
        assert c["bytes_in"] > 0
        assert c["open_streams"] >= 1          # the terminal was open
        assert isinstance(c["cpu_ms"], int) and c["cpu_ms"] > 0
        assert isinstance(c["mem_current_bytes"], int) and c["mem_current_bytes"] > 0
        kinds = {k["kind"]: k for k in s["children"]}
        assert set(kinds) >= {"port_forward", "shell", "terminal"}, s["children"]
        for k in s["children"]:
            check_common(k)
        pf = kinds["port_forward"]
        assert pf["id"] == "%s:%d" % (sid, WEB_PORT) and isinstance(pf["mailbox"], int)
        assert pf["counters"]["requests"] >= 1 and pf["counters"]["bytes_out"] > 0
        sh = kinds["shell"]
        assert sh["id"].startswith("sh_") and isinstance(sh["mailbox"], int)
        assert sh["counters"]["commands"] == 1 and sh["counters"]["bytes_out"] > len("hello-from-shell")
        pty = kinds["terminal"]
        assert pty["id"].startswith("pty_") and pty["mailbox"] is None
        assert pty["counters"]["bytes_in"] >= len("echo pty-$((6*7))\n") and pty["counters"]["bytes_out"] > 0
        status, metrics, _ = d.request("GET", "/metrics")
        assert re.search(r'^warren_actors\{kind="snapshot"\} [1-9]', metrics, re.M), metrics
        assert re.search(r'^warren_actors\{kind="terminal"\} \d', metrics, re.M), metrics
        sn, sparent = all_[snap["snapshot_id"]]
        check_common(sn)
        assert sparent == "n1" and sn["kind"] == "snapshot" and sn["sandbox"] == sid
        assert sn["counters"]["size_bytes"] > 0 and isinstance(sn["mailbox"], int)
        # one actor by id
        status, one, _ = d.request("GET", "/v1/admin/actors/" + sid)
        assert status == 200 and one["id"] == sid and one["kind"] == "sandbox"
        status, body, _ = d.request("GET", "/v1/admin/actors/nosuchactor")
        assert_error(status, body, 404, "not_found")
        # closed sessions leave the tree
        wait_for(lambda: not [k for k in entries(tree(d))[sid][0]["children"] if k["kind"] in ("shell", "terminal")],
                 "the closed shell and terminal to leave the tree")
        d.request("DELETE", "/v1/snapshots/" + snap["snapshot_id"])
    finally:
        destroy_sandbox(d, sid)
    assert sid not in entries(tree(d))


def test_tenant_key_and_no_key_are_refused_everywhere(d, tenant):
    with_body = [("GET", "/v1/admin/actors"), ("GET", "/v1/admin/actors/0123456789abcdef"),
                 ("POST", "/v1/admin/actors/0123456789abcdef/destroy"), ("POST", "/v1/admin/actors/sh_0/kill"),
                 ("GET", "/v1/admin/events")]
    for method, path in with_body:
        status, body, _ = d.request(method, path, key=tenant["key"], body={} if method == "POST" else None)
        assert_error(status, body, 403, "forbidden")
        status, body, _ = d.request(method, path, key=None, body={} if method == "POST" else None)
        assert_error(status, body, 401, "unauthorized")
    for key in (tenant["key"], None):
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            run_async(ws_connect(d, "/v1/admin/events", key=key))
        assert e.value.status_code == (403 if key else 401)


def test_kill_shell_and_terminal_and_sandbox_actions(d, tenant):
    sb = create_sandbox(d, image=IMAGE, sandbox_timeout=-1)
    sid = sb["id"]
    try:
        async def scenario():
            shell = await ws_connect(d, "/v1/sandboxes/%s/shell" % sid)
            pty = await ws_connect(d, "/v1/sandboxes/%s/pty" % sid)
            loop = asyncio.get_running_loop()
            kids = await loop.run_in_executor(None, lambda: wait_for(
                lambda: (lambda k: k if {"shell", "terminal"} <= {x["kind"] for x in k} else None)(
                    entries(tree(d))[sid][0]["children"]), "shell and terminal in the tree"))
            by_kind = {k["kind"]: k["id"] for k in kids}
            for kind, ws in (("shell", shell), ("terminal", pty)):
                aid = by_kind[kind]
                status, body, _ = await loop.run_in_executor(None, action, d, aid, "kill")
                assert status == 200 and body == {"id": aid, "kind": kind, "sandbox": sid, "state": "killed"}, body
                # the client sees its socket closed
                with pytest.raises(websockets.exceptions.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 30)
                # and it is gone from the tree; a second kill is 404
                await loop.run_in_executor(None, lambda: wait_for(
                    lambda: aid not in entries(tree(d)), kind + " to leave the tree"))
                status, body, _ = await loop.run_in_executor(None, action, d, aid, "kill")
                assert_error(status, body, 404, "not_found")
        run_async(scenario())
        # wrong verbs and unknown ids
        status, body, _ = action(d, sid, "kill")
        assert_error(status, body, 400, "bad_request")
        status, body, _ = action(d, "sh_ffffffffffffffff", "kill")
        assert_error(status, body, 404, "not_found")
        status, body, _ = action(d, "not-an-id", "destroy")
        assert_error(status, body, 404, "not_found")
        # hibernate / resume answer the new state; the tree follows
        status, body, _ = action(d, sid, "hibernate")
        assert status == 200 and body["id"] == sid and body["state"] == "hibernated", body
        assert entries(tree(d))[sid][0]["state"] == "hibernated"
        status, body, _ = action(d, sid, "resume")
        assert status == 200 and body["state"] == "running", body
        assert exec_(d, sid, "echo back")["stdout"] == "back\n"
        # an admin acts on any tenant's sandbox
        other = create_sandbox(d, key=tenant["key"], image="busybox:latest")
        status, body, _ = action(d, other["id"], "destroy")
        assert status == 200 and body["id"] == other["id"] and body["state"] == "destroyed", body
        assert "cpu_ms" in body["stats"]
        assert other["id"] not in entries(tree(d))
        status, body, _ = d.request("GET", "/v1/sandboxes/" + other["id"])
        assert_error(status, body, 404, "not_found")
        # the tenant cannot act
        status, body, _ = action(d, sid, "destroy", key=tenant["key"])
        assert_error(status, body, 403, "forbidden")
        status, body, _ = action(d, sid, "destroy")
        assert status == 200 and body["state"] == "destroyed"
    finally:
        destroy_sandbox(d, sid)


def test_reconnect_drops_the_agent_connection_and_opens_a_new_one(d, tenant):
    sb = create_sandbox(d, image="busybox:latest", sandbox_timeout=-1)
    sid = sb["id"]
    try:
        async def scenario():
            loop = asyncio.get_running_loop()
            pty = await ws_connect(d, "/v1/sandboxes/%s/pty" % sid)
            await pty.send(b"echo before-$((1+1))\n")
            seen = b""
            while b"before-2" not in seen:
                m = await asyncio.wait_for(pty.recv(), 30)
                seen += m if isinstance(m, bytes) else m.encode()
            status, body, _ = await loop.run_in_executor(None, action, d, sid, "reconnect")
            assert status == 200 and body["id"] == sid and body["state"] == "running", body
            # the terminal lived on the old connection: it ends
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(pty.recv(), 30)
        run_async(scenario())
        assert exec_(d, sid, "echo after")["stdout"] == "after\n"
        e = entries(tree(d))[sid][0]
        assert e["state"] == "running" and "op" not in e
        status, body, _ = action(d, sid, "reconnect", key=tenant["key"])
        assert_error(status, body, 403, "forbidden")
        assert action(d, sid, "hibernate")[0] == 200
        status, body, _ = action(d, sid, "reconnect")
        assert_error(status, body, 409, "conflict")
    finally:
        destroy_sandbox(d, sid)


def test_revoked_key_is_refused_at_once(d):
    status, body, _ = d.request("POST", "/v1/admin/keys", body={"tenant": "gone"})
    key, key_id = body["key"], body["key_id"]
    assert d.request("GET", "/v1/sandboxes", key=key)[0] == 200
    status, _, _ = d.request("DELETE", "/v1/admin/keys/" + key_id)
    assert status == 204
    status, body, _ = d.request("GET", "/v1/sandboxes", key=key)
    assert_error(status, body, 401, "unauthorized")


def test_events_start_with_the_tree_then_one_frame_per_change(d):
    async def scenario():
        ws = await ws_connect(d, "/v1/admin/events")
        loop = asyncio.get_running_loop()
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert first["type"] == "snapshot" and first["tree"]["nodes"][0]["id"] == "n1"

            async def next_event(pred, what, timeout=60):
                deadline = loop.time() + timeout
                while True:
                    left = deadline - loop.time()
                    assert left > 0, "no event: " + what
                    ev = json.loads(await asyncio.wait_for(ws.recv(), left))
                    if pred(ev):
                        return ev

            sb = await loop.run_in_executor(None, lambda: create_sandbox(d, image="busybox:latest", sandbox_timeout=-1))
            sid = sb["id"]
            try:
                ev = await next_event(lambda e: e["id"] == sid and e["type"] in ("spawned", "state"), "spawned")
                if ev["type"] == "spawned":
                    assert ev["kind"] == "sandbox" and ev["parent"] == "n1" and ev["actor"]["id"] == sid
                    assert "children" not in ev["actor"]
                await loop.run_in_executor(None, action, d, sid, "hibernate")
                ev = await next_event(lambda e: e["id"] == sid and e["type"] == "state" and e["to"] == "hibernated",
                                      "hibernated")
                assert ev["from"] == "running" and ev["kind"] == "sandbox"
                await loop.run_in_executor(None, action, d, sid, "resume")
                await next_event(lambda e: e["id"] == sid and e["type"] == "state" and e["to"] == "running", "resumed")
                await loop.run_in_executor(None, d.request, "POST", "/v1/sandboxes/%s/expose" % sid, {"port": 9000})
                ev = await next_event(lambda e: e["type"] == "spawned" and e["kind"] == "port_forward", "port spawned")
                assert ev["parent"] == sid and ev["id"] == "%s:9000" % sid
            finally:
                await loop.run_in_executor(None, destroy_sandbox, d, sid)
            downs = set()
            while not {sid, "%s:9000" % sid} <= downs:
                ev = await next_event(lambda e: e["type"] == "down", "down")
                downs.add(ev["id"])
        finally:
            await ws.close()
    run_async(scenario(), timeout=180)


def test_drain_is_not_built_and_says_so(d, tenant):
    status, body, _ = d.request("POST", "/v1/admin/nodes/n1/drain", body={})
    assert_error(status, body, 503, "unavailable")
    assert "cluster" in body["error"]["message"] and "not built" in body["error"]["message"]
    status, body, _ = d.request("POST", "/v1/admin/nodes/n1/undrain", body={})
    assert_error(status, body, 503, "unavailable")
    status, body, _ = d.request("POST", "/v1/admin/nodes/n9/drain", body={})
    assert_error(status, body, 404, "not_found")
    status, body, _ = d.request("POST", "/v1/admin/nodes/n1/explode", body={})
    assert_error(status, body, 400, "bad_request")
    status, body, _ = d.request("POST", "/v1/admin/nodes/n1/drain", body={}, key=tenant["key"])
    assert_error(status, body, 403, "forbidden")
    status, body, _ = d.request("POST", "/v1/admin/nodes/n1/drain", body={}, key=None)
    assert_error(status, body, 401, "unauthorized")


def test_events_is_a_websocket(d):
    status, body, _ = d.request("GET", "/v1/admin/events")
    assert_error(status, body, 400, "bad_request")
