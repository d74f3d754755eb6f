"""Dev-server preview: start a web app inside a sandbox and get a shareable URL for it — public,
then behind a token. Run with a daemon on this machine: `python3 examples/dev_server_preview.py`
(WARREN_API_URL / WARREN_API_KEY to point elsewhere)."""
import http.client
import os
import sys
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sdk", "python"))
from warren import Sandbox  # noqa: E402

APP = "<h1>Hello from a Warren sandbox</h1>\n"


def fetch(url, token=None):
    """GETs a public URL. The default public domain is localhost:<api port>, so the request goes
    to the API's address with the URL's host in `Host` (browsers resolve *.localhost themselves)."""
    api = urlsplit(os.environ.get("WARREN_API_URL", "http://127.0.0.1:7070"))
    u = urlsplit(url)
    c = http.client.HTTPConnection(api.hostname, api.port or 80, timeout=10)
    headers = {"Host": u.netloc}
    if token:
        headers["Authorization"] = "Bearer " + token
    c.request("GET", u.path or "/", headers=headers)
    r = c.getresponse()
    return r.status, r.read().decode(errors="replace")


def main():
    with Sandbox(os.environ.get("WARREN_IMAGE", "busybox:latest"), sandbox_timeout=300) as sb:
        sb.write_text("/www/index.html", APP)
        # A real project would run `npm run dev` or `python3 -m http.server`; busybox has httpd.
        sb.exec("(setsid busybox httpd -f -p 8000 -h /www > /dev/null 2>&1 &)")
        url = sb.url(port=8000)
        for _ in range(50):
            if fetch(url)[0] == 200:
                break
            time.sleep(0.1)
        print("public preview:", url, "->", fetch(url))

        exposure = sb.expose(port=8000, auth=True)
        print("private preview:", exposure.url)
        print("  without the token:", fetch(exposure.url)[0])
        print("  with the token:   ", fetch(exposure.url, exposure.token)[0])
        print("  open in a browser (sets a cookie):", exposure.browser_url)


if __name__ == "__main__":
    main()
