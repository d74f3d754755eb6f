"""Public URLs through the SDK: url(), expose() with auth, exposures(), unexpose(), against busybox
httpd in the sandbox. Requests go to 127.0.0.1 with the public host in `Host` (no DNS for
*.localhost needed)."""
import asyncio
import http.client
import time
from urllib.parse import urlsplit

import pytest

from warren import AsyncSandbox, Exposure, WarrenError


def get(url, daemon, headers=None):
    u = urlsplit(url)
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        c.request("GET", u.path or "/", headers=dict(headers or {}, Host=u.netloc))
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture
def web(sb, daemon):
    sb.write_text("/www/index.html", "hello from the sandbox\n")
    sb.exec("(setsid busybox httpd -f -p 8000 -h /www > /dev/null 2>&1 &)")
    url = sb.url(8000)
    deadline = time.time() + 10
    while get(url, daemon)[0] != 200 and time.time() < deadline:
        time.sleep(0.1)
    return sb


def test_url_serves_the_sandbox_port_anonymously(web, daemon):
    url = web.url(8000)
    assert url.startswith("http://run%s." % web.id) and url.endswith("/sb/p/8000/")
    assert get(url, daemon) == (200, b"hello from the sandbox\n")


def test_expose_with_auth_demands_the_token_until_unexposed(web, daemon):
    exp = web.expose(8000, auth=True)
    assert isinstance(exp, Exposure) and exp.port == 8000 and exp.token and exp.browser_url
    assert get(exp.url, daemon)[0] == 401
    assert get(exp.url, daemon, {"Authorization": "Bearer " + exp.token}) == (200, b"hello from the sandbox\n")
    assert [(e.port, e.auth) for e in web.exposures()] == [(8000, True)]
    assert web.exposures()[0].token == ""  # tokens are shown only once
    again = web.expose(8000, auth=True)
    assert again.token != exp.token
    assert get(exp.url, daemon, {"Authorization": "Bearer " + exp.token})[0] == 401
    web.unexpose(8000)
    assert web.exposures() == []
    assert get(exp.url, daemon)[0] == 200


def test_url_of_a_bad_port_is_a_400(sb):
    with pytest.raises(WarrenError) as e:
        sb.url(0)
    assert e.value.code == 400


def test_async_url_and_expose(daemon):
    async def main():
        async with AsyncSandbox(sandbox_timeout=60) as sb:
            url = await sb.url(3000)
            assert sb.id in url
            exp = await sb.expose(3000, auth=False)
            assert exp.port == 3000 and not exp.auth
            assert [e.port for e in await sb.exposures()] == [3000]
            await sb.unexpose(3000)
            assert await sb.exposures() == []
    asyncio.run(main())
