"""Public URLs for sandbox ports (API.md): routing by Host, faithful streaming proxying, upgrades,
forwarding headers, credential stripping, host masking, errors, exposures with auth, keep-alive.
A stdlib server (port_proxy_app.py) runs inside debian sandboxes; clients are http.client,
raw sockets and python3-websockets, talking to the daemon with the port host in `Host`."""
import asyncio
import hashlib
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse

import pytest
import websockets

from warren_harness import (assert_error, create_sandbox, daemon_rss_bytes, destroy_sandbox, exec_,
                            module_daemon)

IMAGE = "debian:bookworm"
APP_PORT = 8000      # the app bound to 127.0.0.1: reached from a socket in the sandbox's network
ADDRESS_PORT = 8001  # the same app bound to the sandbox's own address only: reached over its veth
APP = open(os.path.join(os.path.dirname(__file__), "port_proxy_app.py")).read()


@pytest.fixture(scope="module")
def d():
    yield from module_daemon(("busybox:latest", IMAGE), IMAGE)


def sandbox_ip(d, sid):
    return exec_(d, sid, "ip -4 -o addr show eth0")["stdout"].split()[3].split("/")[0]


def start_app(d, sid, port=APP_PORT, bind="127.0.0.1"):
    exec_(d, sid, "mkdir -p /srv && cat > /srv/app.py", stdin=APP)
    exec_(d, sid, "cd /srv && (setsid nohup python3 /srv/app.py %d %s > /tmp/app-%d.log 2>&1 &)" % (port, bind, port))
    deadline = time.time() + 20
    while time.time() < deadline:
        s, _, _ = proxied(d, sid, "GET", "/ready", port=port)
        if s == 200:
            return
        time.sleep(0.2)
    raise AssertionError("app did not start: " + str(exec_(d, sid, "cat /tmp/app-%d.log" % port)))


@pytest.fixture(scope="module")
def sb(d):
    obj = create_sandbox(d, image=IMAGE)
    start_app(d, obj["id"])
    start_app(d, obj["id"], ADDRESS_PORT, sandbox_ip(d, obj["id"]))
    yield obj["id"]
    destroy_sandbox(d, obj["id"])


# The proxy reaches a server on the sandbox's loopback (or all interfaces) from a socket in its
# network namespace, and one bound to the sandbox's address only over its veth; every
# faithfulness test runs against both (and test_port_proxy_agent_path.py runs them through the
# agent).
@pytest.fixture(params=[APP_PORT, ADDRESS_PORT], ids=["loopback", "address"])
def port(request):
    return request.param


def port_host(d, sid, port=APP_PORT):
    return "%d-%s.localhost:%d" % (port, sid, d.port)


def proxied(d, sid, method, path, body=None, headers=None, port=APP_PORT, host=None, conn=None, timeout=60):
    """A request through the port host; returns (status, body bytes or JSON, headers dict of lists)."""
    h = {"Host": host or port_host(d, sid, port)}
    h.update(headers or {})
    c = conn or http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            hdrs.setdefault(k.lower(), []).append(v)
    finally:
        if conn is None:
            c.close()
    if hdrs.get("content-type", [""])[0].startswith("application/json") and data:
        return r.status, json.loads(data), hdrs
    return r.status, data, hdrs


def seen_headers(body):
    """The request headers as the in-sandbox app saw them: lower-case name → list of values."""
    out = {}
    for k, v in body["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


# --- routing and the URL route --------------------------------------------------------------

def test_url_route_gives_the_run_url_and_the_port_host(d, sb):
    s, body, _ = d.request("GET", "/v1/sandboxes/%s/url?port=8000" % sb)
    assert s == 200, body
    assert body == {"url": "http://run%s.localhost:%d/sb/p/8000/" % (sb, d.port),
                    "host": "8000-%s.localhost:%d" % (sb, d.port)}
    for bad in ("0", "65536", "abc", ""):
        s, body, _ = d.request("GET", "/v1/sandboxes/%s/url?port=%s" % (sb, bad))
        assert_error(s, body, 400, "bad_request")
    s, body, _ = d.request("GET", "/v1/sandboxes/%s/url?port=8000" % sb, key=None)
    assert_error(s, body, 401, "unauthorized")


def test_url_route_is_tenant_checked(d, sb):
    s, k, _ = d.request("POST", "/v1/admin/keys", {"tenant": "other"})
    assert s == 201
    s, body, _ = d.request("GET", "/v1/sandboxes/%s/url?port=8000" % sb, key=k["key"])
    assert_error(s, body, 404, "not_found")


def test_both_host_forms_reach_the_port_with_the_query_verbatim(d, sb):
    s, body, _ = proxied(d, sb, "GET", "/a/b?x=1&y=%2F%20z&x=2")
    assert s == 200 and body["path"] == "/a/b?x=1&y=%2F%20z&x=2"
    run_host = "run%s.localhost:%d" % (sb, d.port)
    s, body, _ = proxied(d, sb, "GET", "/sb/p/8000/a/b?q=%3F", host=run_host)
    assert s == 200 and body["path"] == "/a/b?q=%3F"
    s, body, _ = proxied(d, sb, "GET", "/sb/p/8000?q=1", host=run_host)
    assert s == 200 and body["path"] == "/?q=1"
    s, body, _ = proxied(d, sb, "GET", "/elsewhere", host=run_host)
    assert_error(s, body, 404, "not_found")


def test_no_api_key_is_needed_on_a_port_host(d, sb):
    s, body, _ = proxied(d, sb, "GET", "/v1/info")  # an API path, but on the port host: the app's
    assert s == 200 and body["path"] == "/v1/info"


# --- methods and bodies -----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"])
def test_every_method_is_forwarded_as_is(d, sb, method, port):
    body = b"payload" if method in ("POST", "PUT", "PATCH", "BREW") else None
    s, got, _ = proxied(d, sb, method, "/m", body=body, port=port)
    assert s == 200, got
    assert got["method"] == method
    assert got["body_len"] == (len(body) if body else 0)


def test_head_keeps_the_length_and_sends_no_body(d, sb, port):
    s, got, h = proxied(d, sb, "HEAD", "/head", port=port)
    assert s == 200 and got == b""
    assert int(h["content-length"][0]) > 0


def test_one_gib_upload_streams_through_with_bounded_memory(d, sb, port):
    total = 1 << 30
    block = os.urandom(1 << 20)
    want = hashlib.sha256()
    for _ in range(total // len(block)):
        want.update(block)
    peak = [daemon_rss_bytes(d)]
    base = peak[0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], daemon_rss_bytes(d))
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    try:
        def gen():
            for _ in range(total // len(block)):
                yield block
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=600)
        c.request("PUT", "/upload", body=gen(), headers={"Host": port_host(d, sb, port)}, encode_chunked=True)
        r = c.getresponse()
        got = json.loads(r.read())
        c.close()
    finally:
        stop.set()
        t.join()
    assert r.status == 200
    assert got["body_len"] == total and got["body_sha256"] == want.hexdigest()
    grew = peak[0] - base
    assert grew < 64 << 20, "daemon RSS grew by %d MiB during a 1 GiB upload" % (grew >> 20)


def test_content_length_upload_is_forwarded_with_its_length(d, sb, port):
    data = os.urandom(8 << 20)
    s, got, _ = proxied(d, sb, "POST", "/upload", body=data, port=port)
    assert s == 200
    assert got["body_len"] == len(data) and got["body_sha256"] == hashlib.sha256(data).hexdigest()
    assert seen_headers(got)["content-length"] == [str(len(data))]


def test_large_chunked_response_streams_to_the_client(d, sb, port):
    n = 256 << 20
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=120)
    c.request("GET", "/big?n=%d" % n, headers={"Host": port_host(d, sb, port)})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    got = 0
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        got += len(b)
    c.close()
    assert got == n


def test_sse_events_arrive_one_by_one(d, sb, port):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    c.request("GET", "/sse", headers={"Host": port_host(d, sb, port), "Accept": "text/event-stream"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    times = []
    t0 = time.time()
    while True:
        line = r.readline()
        if not line:
            break
        if line.startswith(b"data:"):
            times.append(time.time() - t0)
    c.close()
    assert len(times) == 4
    # The server sleeps 0.5 s between events: each must arrive on its own, not at the end.
    assert times[0] < 0.4, times
    for a, b in zip(times, times[1:]):
        assert b - a > 0.3, times


# --- upgrades -----------------------------------------------------------------------------------

def test_websocket_echo_through_the_proxy(d, sb, port):
    async def run():
        sock = socket.create_connection(("127.0.0.1", d.port))
        uri = "ws://%s/ws" % port_host(d, sb, port)
        async with websockets.connect(uri, sock=sock, max_size=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            big = os.urandom(300000)
            await ws.send(big)
            assert await ws.recv() == big
            for i in range(50):
                await ws.send("m%d" % i)
            for i in range(50):
                assert await ws.recv() == "m%d" % i
    asyncio.run(run())


# --- headers --------------------------------------------------------------------------------------

def test_cookies_go_both_ways(d, sb, port):
    s, got, h = proxied(d, sb, "GET", "/cookie", headers={"Cookie": "sid=abc; theme=dark"}, port=port)
    assert s == 200
    assert seen_headers(got)["cookie"] == ["sid=abc; theme=dark"]
    assert sorted(h["set-cookie"]) == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]


def test_hop_by_hop_headers_are_dropped_both_ways(d, sb, port):
    s, got, h = proxied(d, sb, "GET", "/hop", headers={
        "Connection": "keep-alive, X-Private", "X-Private": "secret", "Keep-Alive": "timeout=9",
        "TE": "trailers", "Proxy-Authorization": "Basic eA==", "Trailer": "X-T", "X-Kept-Req": "1"}, port=port)
    assert s == 200
    seen = seen_headers(got)
    for gone in ("x-private", "keep-alive", "te", "proxy-authorization", "trailer"):
        assert gone not in seen, (gone, seen)
    assert seen["x-kept-req"] == ["1"]
    assert "x-hop-secret" not in h and "keep-alive" not in h
    assert h["x-kept"] == ["yes"]


def test_forwarding_headers_are_added(d, sb, port):
    s, got, _ = proxied(d, sb, "GET", "/fwd", headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "6.6.6.6",
                                                     "X-Forwarded-Host": "spoofed.example"}, port=port)
    seen = seen_headers(got)
    assert seen["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert seen["x-real-ip"] == ["127.0.0.1"]
    assert seen["x-forwarded-host"] == [port_host(d, sb, port)]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["host"] == [port_host(d, sb, port)]


def test_warren_api_keys_are_stripped_other_authorization_passes(d, sb, port):
    s, got, _ = proxied(d, sb, "GET", "/auth", headers={"Authorization": "Bearer " + d.admin_key}, port=port)
    assert s == 200 and "authorization" not in seen_headers(got)
    s, got, _ = proxied(d, sb, "GET", "/auth", headers={"Authorization": "Bearer app-own-token"}, port=port)
    assert seen_headers(got)["authorization"] == ["Bearer app-own-token"]


def test_mask_request_host_rewrites_host_but_not_x_forwarded_host(d):
    obj = create_sandbox(d, image=IMAGE, mask_request_host="localhost:${PORT}")
    try:
        start_app(d, obj["id"], 8080)
        s, got, _ = proxied(d, obj["id"], "GET", "/masked", port=8080)
        seen = seen_headers(got)
        assert seen["host"] == ["localhost:8080"]
        assert seen["x-forwarded-host"] == [port_host(d, obj["id"], 8080)]
    finally:
        destroy_sandbox(d, obj["id"])


# --- errors ---------------------------------------------------------------------------------------

def test_nothing_listening_is_a_502_naming_port_and_sandbox(d, sb):
    s, body, _ = proxied(d, sb, "GET", "/", port=9)
    assert_error(s, body, 502, "bad_gateway")
    assert body["error"]["message"] == "no server is listening on port 9 in sandbox %s" % sb


def test_unknown_sandbox_is_404(d):
    s, body, _ = proxied(d, "0123456789abcdef", "GET", "/")
    assert_error(s, body, 404, "not_found")
    s, body, _ = proxied(d, None, "GET", "/sb/p/80/", host="run0123456789abcdef.localhost:%d" % d.port)
    assert_error(s, body, 404, "not_found")


@pytest.mark.parametrize("bind", ["127.0.0.1", "address"])
def test_destroying_the_sandbox_mid_response_ends_the_connection(d, bind):
    obj = create_sandbox(d, image=IMAGE)
    start_app(d, obj["id"], APP_PORT, sandbox_ip(d, obj["id"]) if bind == "address" else bind)
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    c.request("GET", "/slow", headers={"Host": port_host(d, obj["id"])})
    r = c.getresponse()
    assert r.status == 200
    assert r.read1(64)
    destroy_sandbox(d, obj["id"])
    t0 = time.time()
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        while r.read1(1024):
            pass
        raise AssertionError("a cut-off chunked body must not end like a complete one")
    assert time.time() - t0 < 10
    c.close()
    s, body, _ = proxied(d, obj["id"], "GET", "/")
    assert_error(s, body, 404, "not_found")


def upstream_opened(d):
    """warren_port_proxy_upstream_connections_total by path (address, loopback, agent)."""
    s, text, _ = d.request("GET", "/metrics")
    assert s == 200
    out = {}
    for line in text.splitlines():
        if line.startswith("warren_port_proxy_upstream_connections_total{"):
            out[line.split('path="')[1].split('"')[0]] = int(line.split()[-1])
    return out


def test_a_server_on_loopback_or_all_interfaces_is_reached_on_loopback_one_on_the_address_only_on_it(d, sb):
    # What the in-sandbox server sees as its peer tells the paths apart: loopback (from a socket
    # in the sandbox's network namespace) or the host end of the sandbox's veth (on its address);
    # the metrics tell which way in. Fresh ports: new connections.
    gw = exec_(d, sb, "ip -4 route show default")["stdout"].split()[2]
    ip = sandbox_ip(d, sb)
    for port, bind, path, peers in ((8020, "127.0.0.1", "loopback", ("127.0.0.1",)),
                                    (8021, "::1", "loopback", ("::1",)),
                                    (8022, "0.0.0.0", "loopback", ("127.0.0.1",)),
                                    (8023, ip, "address", (gw,))):
        before = upstream_opened(d)
        start_app(d, sb, port, bind)
        s, got, _ = proxied(d, sb, "GET", "/peer", port=port)
        assert s == 200 and got["peer_host"] in peers, (bind, got)
        after = upstream_opened(d)
        assert after[path] > before[path], (bind, before, after)
        assert after["agent"] == before["agent"], (bind, before, after)  # never through the agent


def test_a_server_that_rebinds_is_still_reached_on_its_new_path(d):
    obj = create_sandbox(d, image=IMAGE)
    gw = exec_(d, obj["id"], "ip -4 route show default")["stdout"].split()[2]

    def moved_to(bind, peer):
        exec_(d, obj["id"], "pkill -f '^python3 /srv/app.py %d'; sleep 0.3" % APP_PORT)
        start_app(d, obj["id"], APP_PORT, bind)
        # Connections on a fallback path are reused for 5 s, refusals remembered for 2 s.
        deadline = time.time() + 15
        while time.time() < deadline:
            s, got, _ = proxied(d, obj["id"], "GET", "/peer")
            if s == 200 and got["peer_host"] == peer:
                return
            time.sleep(0.5)
        raise AssertionError("still not reached on %s: %s %s" % (peer, s, got))

    try:
        start_app(d, obj["id"], APP_PORT, "127.0.0.1")
        s, got, _ = proxied(d, obj["id"], "GET", "/peer")
        assert s == 200 and got["peer_host"] == "127.0.0.1"
        moved_to(sandbox_ip(d, obj["id"]), gw)  # loopback -> the sandbox's address only
        moved_to("0.0.0.0", "127.0.0.1")        # -> all interfaces: loopback again
    finally:
        destroy_sandbox(d, obj["id"])


# --- keep-alive -------------------------------------------------------------------------------------

def test_keep_alive_to_the_client_and_pooled_connections_to_the_sandbox(d, sb, port):
    # Connections pooled by earlier tests: on the agent path they are reused only for 5 s after
    # being opened. Let them age out first, so the first request opens the connection that the
    # rest reuse — under load an older one could otherwise serve two requests before retiring.
    time.sleep(5.5)
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    peers = []
    try:
        for _ in range(10):
            s, got, _ = proxied(d, sb, "GET", "/ka", conn=c, port=port)
            assert s == 200
            peers.append(got["peer_port"])
            assert c.sock is not None  # the client connection stayed open
    finally:
        c.close()
    # Sequential requests reuse one upstream connection (the app sees the same peer port). On
    # the direct path the first may take an older pooled one (those are kept while idle < 30 s).
    assert len(set(peers[1:])) == 1, peers


# A server that answers the first request on each connection (keep-alive) and drops the
# connection, unanswered, when a second one arrives on it: what a server with a short keep-alive
# timeout does when a request crosses its close. The body echoes the request head it got.
DROPPER = r"""
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[2], int(sys.argv[1])))
s.listen(64)
def serve(c):
    buf, n = b"", 0
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return c.close()
            buf += d
        head, _, buf = buf.partition(b"\r\n\r\n")
        n += 1
        if n > 1:
            return c.close()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(head) + head)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


def test_a_pooled_connection_the_server_drops_is_retried_on_a_new_one(d, sb, port):
    p = port + 10  # 8010 on loopback, 8011 on the sandbox's address
    exec_(d, sb, "cat > /srv/dropper.py", stdin=DROPPER)
    exec_(d, sb, "(setsid nohup python3 /srv/dropper.py %d %s > /tmp/dropper-%d.log 2>&1 &)"
          % (p, sandbox_ip(d, sb) if port == ADDRESS_PORT else "127.0.0.1", p))
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        deadline = time.time() + 20
        while proxied(d, sb, "GET", "/ready", port=p)[0] != 200:
            assert time.time() < deadline, exec_(d, sb, "cat /tmp/dropper-%d.log" % p)
            time.sleep(0.2)
        for i in range(4):  # from the second on, the pooled connection is dropped: a new one answers
            s, got, _ = proxied(d, sb, "GET", "/r%d?q=%d" % (i, i), conn=c, port=p)
            assert s == 200, got
            head = got.decode().lower()
            assert head.startswith("get /r%d?q=%d http/1.1\r\n" % (i, i)), head
            assert "x-forwarded-host: %d-%s" % (p, sb) in head, head  # the whole head, again
    finally:
        c.close()


# --- exposures ---------------------------------------------------------------------------------------

def expose(d, sid, port, auth=True):
    s, body, _ = d.request("POST", "/v1/sandboxes/%s/expose" % sid, {"port": port, "auth": auth})
    assert s == 200, body
    return body


def test_exposure_with_auth_demands_the_token(d, sb):
    e = expose(d, sb, APP_PORT)
    try:
        assert e["port"] == APP_PORT and e["url"] == "http://%s/" % port_host(d, sb)
        assert len(e["token"]) >= 32
        s, body, _ = proxied(d, sb, "GET", "/private")
        assert_error(s, body, 401, "unauthorized")
        s, body, _ = proxied(d, sb, "GET", "/private", headers={"Authorization": "Bearer wrong"})
        assert_error(s, body, 401, "unauthorized")
        s, got, _ = proxied(d, sb, "GET", "/private", headers={"Authorization": "Bearer " + e["token"]})
        assert s == 200 and "authorization" not in seen_headers(got)
        # the run host form is guarded the same way
        run_host = "run%s.localhost:%d" % (sb, d.port)
        s, body, _ = proxied(d, sb, "GET", "/sb/p/8000/x", host=run_host)
        assert_error(s, body, 401, "unauthorized")
    finally:
        d.request("DELETE", "/v1/sandboxes/%s/exposures/%d" % (sb, APP_PORT))


def test_browser_url_sets_a_cookie_and_redirects_to_next(d, sb):
    e = expose(d, sb, APP_PORT)
    try:
        u = urllib.parse.urlsplit(e["browser_url"])
        assert u.netloc == port_host(d, sb)
        s, _, h = proxied(d, sb, "GET", u.path + "?" + u.query)
        assert s == 302 and h["location"] == ["/"]
        cookie = h["set-cookie"][0]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        pair = cookie.split(";")[0]
        s, got, _ = proxied(d, sb, "GET", "/with-cookie", headers={"Cookie": "mine=1; " + pair})
        assert s == 200
        assert seen_headers(got)["cookie"] == ["mine=1"]  # Warren's cookie never reaches the app
        q = urllib.parse.urlencode({"token": e["token"], "next": "/app/page?x=1#top"})
        s, _, h = proxied(d, sb, "GET", "/__warren/auth?" + q)
        assert s == 302 and h["location"] == ["/app/page?x=1#top"]
        s, body, _ = proxied(d, sb, "GET", "/__warren/auth?" + urllib.parse.urlencode({"token": "nope"}))
        assert_error(s, body, 401, "unauthorized")
    finally:
        d.request("DELETE", "/v1/sandboxes/%s/exposures/%d" % (sb, APP_PORT))


@pytest.mark.parametrize("nxt", ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
                                 "javascript:alert(1)", "/ok\r\nSet-Cookie: x=1", "evil.example", "/\tx"])
def test_browser_url_next_cannot_leave_the_host(d, sb, nxt):
    e = expose(d, sb, APP_PORT)
    try:
        q = urllib.parse.urlencode({"token": e["token"], "next": nxt})
        s, body, h = proxied(d, sb, "GET", "/__warren/auth?" + q)
        assert_error(s, body, 400, "bad_request")
        assert "location" not in h and "set-cookie" not in h
    finally:
        d.request("DELETE", "/v1/sandboxes/%s/exposures/%d" % (sb, APP_PORT))


def test_exposing_again_replaces_the_token_and_delete_makes_the_port_public(d, sb):
    first = expose(d, sb, APP_PORT)
    second = expose(d, sb, APP_PORT)
    assert first["token"] != second["token"]
    s, body, _ = proxied(d, sb, "GET", "/", headers={"Authorization": "Bearer " + first["token"]})
    assert_error(s, body, 401, "unauthorized")
    s, _, _ = proxied(d, sb, "GET", "/", headers={"Authorization": "Bearer " + second["token"]})
    assert s == 200
    s, body, _ = d.request("GET", "/v1/sandboxes/%s/exposures" % sb)
    assert s == 200
    [x] = body["exposures"]
    assert x["port"] == APP_PORT and x["auth"] is True and x["url"] == second["url"] and "token" not in x
    assert x["created_at"] == second["created_at"]
    s, body, _ = d.request("DELETE", "/v1/sandboxes/%s/exposures/%d" % (sb, APP_PORT))
    assert s == 204
    s, _, _ = proxied(d, sb, "GET", "/")
    assert s == 200  # public again
    s, body, _ = d.request("DELETE", "/v1/sandboxes/%s/exposures/%d" % (sb, APP_PORT))
    assert_error(s, body, 404, "not_found")
    s, body, _ = d.request("GET", "/v1/sandboxes/%s/exposures" % sb)
    assert body == {"exposures": []}


def test_expose_validates_its_body_and_tenancy(d, sb):
    for bad in ({"port": 0}, {"port": 70000}, {"port": "80"}, {"auth": True}, {"port": 80, "x": 1}):
        s, body, _ = d.request("POST", "/v1/sandboxes/%s/expose" % sb, bad)
        assert_error(s, body, 400, "bad_request")
    s, k, _ = d.request("POST", "/v1/admin/keys", {"tenant": "intruder"})
    s, body, _ = d.request("POST", "/v1/sandboxes/%s/expose" % sb, {"port": 80}, key=k["key"])
    assert_error(s, body, 404, "not_found")


def test_exposures_have_actors_and_counters_in_metrics(d, sb):
    e = expose(d, sb, APP_PORT)
    try:
        for _ in range(3):
            s, _, _ = proxied(d, sb, "POST", "/count", body=b"12345", headers={"Authorization": "Bearer " + e["token"]})
            assert s == 200
        s, text, _ = d.request("GET", "/metrics")
        assert 'warren_actors{kind="port_forward"} 1' in text
        label = '{sandbox="%s",port="%d"}' % (sb, APP_PORT)
        assert "warren_port_forward_requests_total%s 3" % label in text
        line = [l for l in text.splitlines() if l.startswith("warren_port_forward_bytes_in_total" + label)][0]
        assert int(line.split()[-1]) >= 15
        s, tree, _ = d.request("GET", "/v1/admin/actors")
        kids = [c for n in tree["nodes"] for s_ in n["children"] if s_["id"] == sb for c in s_["children"]]
        assert {"kind": "port_forward", "id": "%s:%d" % (sb, APP_PORT)}.items() <= kids[0].items()
    finally:
        d.request("DELETE", "/v1/sandboxes/%s/exposures/%d" % (sb, APP_PORT))


def test_destroying_the_sandbox_revokes_its_exposures(d):
    obj = create_sandbox(d, image=IMAGE)
    start_app(d, obj["id"])
    e = expose(d, obj["id"], APP_PORT)
    destroy_sandbox(d, obj["id"])
    s, body, _ = proxied(d, obj["id"], "GET", "/", headers={"Authorization": "Bearer " + e["token"]})
    assert_error(s, body, 404, "not_found")
    s, text, _ = d.request("GET", "/metrics")
    assert 'warren_actors{kind="port_forward"} 0' in text


def test_zz_exposures_survive_a_daemon_restart(d, sb):
    e = expose(d, sb, APP_PORT)
    d.stop()
    d.start()
    s, body, _ = d.request("GET", "/v1/sandboxes/%s/exposures" % sb)
    assert s == 200 and [x["port"] for x in body["exposures"]] == [APP_PORT]
    s, body, _ = proxied(d, sb, "GET", "/after-restart")
    assert_error(s, body, 401, "unauthorized")
    s, got, _ = proxied(d, sb, "GET", "/after-restart", headers={"Authorization": "Bearer " + e["token"]})
    assert s == 200 and got["path"] == "/after-restart"
