"""`public: false` (API.md "Create"): every port URL of the sandbox demands its token, returned
once as `traffic_token` in the create reply — as `Authorization: Bearer`, as E2B's
`E2b-Traffic-Access-Token` header, or through a port's browser_url cookie. A public sandbox stays
anonymous; the token never reaches the app inside; an exposure of its own still rules its port."""
import http.client
import time

import pytest

from warren_harness import create_sandbox, destroy_sandbox, exec_, module_daemon

PORT = 8080


@pytest.fixture(scope="module")
def d():
    yield from module_daemon(("busybox:latest",), "busybox:latest")


def get(d, sid, headers=None, port=PORT, path="/index.html"):
    h = {"Host": "%d-%s.localhost:%d" % (port, sid, d.port)}
    h.update(headers or {})
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        c.request("GET", path, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def serve(d, sid, port=PORT):
    # busybox httpd logs the request headers with -v; the page is what the test checks.
    exec_(d, sid, "mkdir -p /www && echo page > /www/index.html && "
                  "setsid busybox httpd -p 127.0.0.1:%d -h /www </dev/null >/dev/null 2>&1 &" % port)
    for _ in range(100):
        s, _ = get(d, sid, port=port)
        if s in (200, 401):
            return
        time.sleep(0.1)


def test_private_sandbox_demands_its_token(d):
    s, priv, _ = d.request("POST", "/v1/sandboxes", {"image": "busybox:latest", "public": False})
    assert s == 201, priv
    token = priv.pop("traffic_token")
    assert len(token) == 48
    pub = create_sandbox(d)
    assert "traffic_token" not in pub
    try:
        serve(d, priv["id"])
        serve(d, pub["id"])
        s, body = get(d, priv["id"])
        assert s == 401 and b"public: false" in body, body
        assert get(d, priv["id"], {"Authorization": "Bearer wrong"})[0] == 401
        assert get(d, priv["id"], {"Authorization": "Bearer " + token}) == (200, b"page\n")
        assert get(d, priv["id"], {"E2b-Traffic-Access-Token": token}) == (200, b"page\n")
        # Another port of the same sandbox is private too (nothing listens there: 502 after auth).
        assert get(d, priv["id"], port=9999)[0] == 401
        assert get(d, priv["id"], {"Authorization": "Bearer " + token}, port=9999)[0] == 502
        # A public sandbox's port needs nothing.
        assert get(d, pub["id"]) == (200, b"page\n")
        # The token is not shown again.
        s, again, _ = d.request("GET", "/v1/sandboxes/" + priv["id"])
        assert s == 200 and "traffic_token" not in again and "public" not in again
        # An exposure of its own (anonymous here) rules its port.
        s, body, _ = d.request("POST", "/v1/sandboxes/%s/expose" % priv["id"], {"port": PORT, "auth": False})
        assert s == 200, body
        assert get(d, priv["id"]) == (200, b"page\n")
        assert get(d, priv["id"], port=9999)[0] == 401
        s, _, _ = d.request("DELETE", "/v1/sandboxes/%s/exposures/%d" % (priv["id"], PORT))
        assert s == 204
        assert get(d, priv["id"])[0] == 401
    finally:
        destroy_sandbox(d, priv["id"])
        destroy_sandbox(d, pub["id"])


def test_public_must_be_a_boolean(d):
    s, body, _ = d.request("POST", "/v1/sandboxes", {"image": "busybox:latest", "public": "no"})
    assert s == 400, body
