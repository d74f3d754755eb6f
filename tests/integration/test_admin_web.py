"""The web admin console at /admin/ (docs/guides/operations-console.md) in headless Chromium
(Debian's /usr/bin/chromium driven by npm's playwright-core from tests/e2e/admin_console.mjs, the
node_modules of tests/e2e/package.json cached by warren_harness.npm_modules): log in (a tenant key is refused), watch a
sandbox created through the API appear live, open its terminal and run a command, destroy it and
see it vanish, log out. Plus, without a browser: caching headers, the session cookie's refusals,
CSRF and Origin checks. WARREN_DOCS_SCREENSHOTS=1 writes the screenshots into
docs/guides/operations-console/ (how the guide's pictures are made)."""
import http.client
import json
import os
import subprocess
import tempfile

import pytest

from warren_harness import BIN_DIR, assert_error, cleanup_sandboxes, Daemon, npm_modules, shared_images, tool

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.realpath(os.path.join(HERE, "..", "e2e"))  # package.json with playwright-core
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DOCS_SHOTS = os.path.realpath(os.path.join(HERE, "..", "..", "docs", "guides", "operations-console"))
WEB = os.path.realpath(os.path.join(BIN_DIR, "..", "share", "warren", "admin"))


@pytest.fixture(scope="module")
def d():
    dm = Daemon(images=shared_images(("busybox:latest",)), extra_args=["--default-image", "busybox:latest"]).start()
    yield dm
    cleanup_sandboxes(dm)
    dm.close()


@pytest.fixture(scope="module")
def tenant_key(d):
    status, body, _ = d.request("POST", "/v1/admin/keys", body={"tenant": "acme"})
    assert status == 201
    return body["key"]


def raw(d, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def need_xterm():
    """The console's terminal needs xterm.js from npm; a build without the registry has none
    (scripts/build-web-admin.sh warns and writes build/web-npm-cache/<hash>/npm.log)."""
    if not os.path.exists(os.path.join(WEB, "vendor", "xterm.js")):
        pytest.skip("xterm.js was not built (npm registry unreachable at build time?): see build/web-npm-cache/*/npm.log")


def login(d, key):
    return raw(d, "POST", "/admin/login", json.dumps({"key": key}), {"Content-Type": "application/json"})


def test_pages_are_served_with_revalidation_headers(d):
    assert os.path.exists(os.path.join(WEB, "index.html")), "the build did not make build/share/warren/admin"
    status, body, h = raw(d, "GET", "/admin/")
    assert status == 200 and h["content-type"].startswith("text/html") and b"Warren admin console" in body
    assert h["cache-control"] == "no-cache" and h["etag"] and "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-content-type-options"] == "nosniff"
    status, body, _ = raw(d, "GET", "/admin/", headers={"If-None-Match": h["etag"]})
    assert status == 304 and body == b""
    status, body, h = raw(d, "GET", "/admin/app.js")
    assert status == 200 and h["content-type"].startswith("text/javascript") and h["cache-control"] == "no-cache"
    status, _, h = raw(d, "GET", "/admin")
    assert status == 308 and h["location"] == "/admin/"
    for bad in ("/admin/../admin.key", "/admin/nothing.js", "/admin/vendor/%2e%2e/x.js"):
        status, _, _ = raw(d, "GET", bad)
        assert status == 404, bad


def test_xterm_is_built_from_npm_and_served(d):
    need_xterm()
    status, body, h = raw(d, "GET", "/admin/vendor/xterm.js")
    assert status == 200 and b"Terminal" in body and h["content-type"].startswith("text/javascript")
    status, body, h = raw(d, "GET", "/admin/vendor/xterm.css")
    assert status == 200 and h["content-type"].startswith("text/css")


def test_login_refuses_tenant_and_bad_keys_and_form_posts(d, tenant_key):
    status, body, h = login(d, tenant_key)
    assert_error(status, json.loads(body), 403, "forbidden")
    assert "set-cookie" not in h
    status, body, _ = login(d, "wrn_live_local_nope_" + "0" * 32)
    assert_error(status, json.loads(body), 401, "unauthorized")
    status, body, _ = raw(d, "POST", "/admin/login", "key=" + d.admin_key,
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(status, json.loads(body), 400, "bad_request")
    status, body, _ = raw(d, "GET", "/admin/session")
    assert_error(status, json.loads(body), 401, "unauthorized")


def test_session_cookie_csrf_and_origin(d):
    status, body, h = login(d, d.admin_key)
    assert status == 200, body
    cookie = h["set-cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie, cookie
    token = cookie.split(";")[0]
    csrf = json.loads(body)["csrf"]
    assert d.admin_key not in cookie
    ck = {"Cookie": token}
    status, body, _ = raw(d, "GET", "/v1/admin/actors", headers=ck)
    assert status == 200 and json.loads(body)["nodes"][0]["id"] == "n1"
    # a state change needs the CSRF token
    status, body, _ = raw(d, "POST", "/v1/admin/keys", json.dumps({"tenant": "x"}),
                          dict(ck, **{"Content-Type": "application/json"}))
    assert_error(status, json.loads(body), 403, "forbidden")
    status, body, _ = raw(d, "POST", "/v1/admin/keys", json.dumps({"tenant": "x"}),
                          dict(ck, **{"Content-Type": "application/json", "X-Warren-CSRF": csrf}))
    assert status == 201, body
    # another origin is refused even with the cookie
    status, body, _ = raw(d, "GET", "/v1/admin/actors", headers=dict(ck, Origin="http://evil.example"))
    assert_error(status, json.loads(body), 403, "forbidden")
    # logout (with the token) ends it
    status, _, h = raw(d, "POST", "/admin/logout", "", dict(ck, **{"X-Warren-CSRF": csrf}))
    assert status == 204 and "Max-Age=0" in h["set-cookie"]
    status, body, _ = raw(d, "GET", "/v1/admin/actors", headers=ck)
    assert_error(status, json.loads(body), 401, "unauthorized")
    status, body, _ = raw(d, "GET", "/v1/admin/actors", headers={"Cookie": "warren_admin=" + "ab" * 32})
    assert_error(status, json.loads(body), 401, "unauthorized")


def test_revoking_the_key_ends_its_sessions(d):
    status, body, _ = d.request("POST", "/v1/admin/keys", body={"tenant": "ops", "admin": True})
    key, key_id = body["key"], body["key_id"]
    status, body, h = login(d, key)
    assert status == 200
    ck = {"Cookie": h["set-cookie"].split(";")[0]}
    assert raw(d, "GET", "/v1/admin/actors", headers=ck)[0] == 200
    assert d.request("DELETE", "/v1/admin/keys/" + key_id)[0] == 204
    status, body, _ = raw(d, "GET", "/v1/admin/actors", headers=ck)
    assert_error(status, json.loads(body), 401, "unauthorized")


def test_console_in_headless_chromium(d, tenant_key):
    need_xterm()
    node_modules = npm_modules(E2E)
    shots = DOCS_SHOTS if os.environ.get("WARREN_DOCS_SCREENSHOTS") == "1" else tempfile.mkdtemp(prefix="warren-shots-")
    os.makedirs(shots, exist_ok=True)
    env = dict(os.environ, BASE="http://127.0.0.1:%d" % d.port, ADMIN_KEY=d.admin_key, TENANT_KEY=tenant_key,
               IMAGE="busybox:latest", CHROMIUM=CHROMIUM, SHOTS=shots, E2E_NODE_MODULES=node_modules)
    r = subprocess.run([tool("node"), os.path.join(E2E, "admin_console.mjs")], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, (r.stdout.decode(errors="replace")[-3000:], r.stderr.decode(errors="replace")[-3000:])
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert res["ok"] and "forbidden" in res["tenant_refused"] and "web-42" in res["terminal"]
    for f in ("login.png", "overview.png", "sandbox.png"):
        assert os.path.getsize(os.path.join(shots, f)) > 1000
