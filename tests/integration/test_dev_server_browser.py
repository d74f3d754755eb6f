"""End to end in a real browser (issue 5, docs/guides/dev-server-preview.md): a Vite dev server
runs INSIDE a debian sandbox, headless Chromium (Debian's /usr/bin/chromium, driven by npm's
playwright-core from tests/e2e/vite_hmr.mjs on the host's node) opens it through
`http://5173-<id>.localhost:<api port>/` — Warren's port proxy — and we check that the page
renders, and that editing a source file inside the sandbox (files API PUT) updates the open page
through Vite's HMR WebSocket (tunnelled by the proxy) without a full reload: `window.__marker`,
set before the edit, survives, no main-frame navigation happens, and Vite logs "hot updated".

How the sandbox gets Node and Vite (the debian image has no node, and sandboxes have no route
to the npm registry under the default network policy):
- npm packages are installed ON THE HOST with `npm install` from the committed tests/e2e/package.json
  and package-lock.json into build/e2e-cache/<hash of both>/ (once; later runs reuse it; a file
  lock serialises parallel runs). vite 6 and playwright-core 1.56 are pinned because both run on
  Node 18 (Debian 12's nodejs package, what install-deps gives a fresh machine) and on 20+
  (NodeSource); vite 7 needs Node >= 20.19. Esbuild/rollup's native binaries are the linux-x64
  glibc ones, which run in the debian sandbox.
- The host's own `node` binary is copied in with every shared library `ldd` lists (the dynamic
  loader included) into /opt/node/lib, and /opt/node/bin/node is a wrapper that runs it through
  that loader with `--library-path /opt/node/lib`. So the sandbox needs nothing from the image:
  it works whether the host's node is NodeSource's (few libraries) or Debian's (libnode, libuv,
  ICU, OpenSSL, ... all listed by ldd), and whatever glibc the image has.
- Everything (node, libraries, the app from tests/e2e/vite-app, node_modules without
  playwright-core) goes up as ONE tar through the files API (PUT, streamed) and is unpacked with
  `tar -x` inside.

Vite listens on 127.0.0.1:5173 in the sandbox (the proxy connects to the sandbox's loopback from
a socket in its network namespace), accepts the public Host with `server.allowedHosts: ['.localhost']`, and its HMR client
connects to the page's origin with `hmr.clientPort` = the API port (tests/e2e/vite-app/vite.config.mjs).

Skips (with the npm error) only when the npm registry cannot be reached; a missing node, npm or
chromium is a failure (scripts/install-deps.sh installs them)."""
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
import http.client

import pytest

from warren_harness import (BIN_DIR, create_sandbox, destroy_sandbox, exec_, module_daemon, npm_modules, tool)

IMAGE = "debian:bookworm"
VITE_PORT = 5173
HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.realpath(os.path.join(HERE, "..", "e2e"))
APP = os.path.join(E2E, "vite-app")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BEFORE = "hello from the sandbox v1"
AFTER = "hot-updated inside the sandbox v2"


def node_with_libraries():
    """(node binary, [(name in /opt/node/lib, host path)], loader name): the host's node and
    everything the dynamic loader maps for it, so it runs in any glibc-less-or-different image."""
    node = os.path.realpath(tool("node"))
    out = subprocess.run(["ldd", node], capture_output=True, text=True, check=True).stdout
    libs, loader = [], None
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (/\S+) \(0x", line)
        if m:
            libs.append((m.group(1), m.group(2)))
            continue
        m = re.match(r"(/\S+) \(0x", line)
        if m:
            loader = os.path.basename(m.group(1))
            libs.append((loader, m.group(1)))
    assert loader, "no dynamic loader in `ldd %s`:\n%s" % (node, out)
    return node, libs, loader


def build_bundle(tar_path, node_modules):
    node, libs, loader = node_with_libraries()
    wrapper = ("#!/bin/sh\nexec /opt/node/lib/%s --library-path /opt/node/lib /opt/node/bin/node.real \"$@\"\n"
               % loader).encode()

    def skip_driver(ti):  # playwright-core drives the browser on the host; the sandbox needs only vite
        parts = ti.name.split("/")
        return None if "playwright-core" in parts else ti

    with tarfile.open(tar_path, "w") as t:
        t.add(node, "opt/node/bin/node.real")
        for name, path in libs:
            t.add(os.path.realpath(path), "opt/node/lib/" + name)
        info = tarfile.TarInfo("opt/node/bin/node")
        info.size, info.mode = len(wrapper), 0o755
        t.addfile(info, io.BytesIO(wrapper))
        for f in os.listdir(APP):
            t.add(os.path.join(APP, f), "srv/app/" + f)
        t.add(node_modules, "srv/app/node_modules", filter=skip_driver)


@pytest.fixture(scope="module")
def d():
    yield from module_daemon(("busybox:latest", IMAGE), IMAGE)


def proxied_get(d, host, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def put_file(d, sid, path, local):
    """PUT /files streaming a local file (the bundle is ~130 MB; never held in memory)."""
    c = d.conn(timeout=300)
    try:
        with open(local, "rb") as f:
            c.request("PUT", "/v1/sandboxes/%s/files?path=%s" % (sid, path), body=f,
                      headers={"Authorization": "Bearer " + d.admin_key,
                               "Content-Length": str(os.path.getsize(local))})
            r = c.getresponse()
            body = r.read()
        assert r.status == 200, (r.status, body)
    finally:
        c.close()


class Driver:
    """tests/e2e/vite_hmr.mjs under the host's node; one JSON object per stdout line."""

    def __init__(self, url, node_modules):
        env = dict(os.environ, E2E_NODE_MODULES=node_modules, CHROMIUM=CHROMIUM)
        self.p = subprocess.Popen([tool("node"), os.path.join(E2E, "vite_hmr.mjs"), url, BEFORE, AFTER],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.watchdog = threading.Timer(300, self.p.kill)  # the driver's own waits are shorter
        self.watchdog.start()

    def message(self):
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            raise AssertionError("driver exited (%s) without output; stderr:\n%s"
                                 % (self.p.returncode, self.p.stderr.read().decode(errors="replace")))
        return json.loads(line)

    def go_on(self):
        self.p.stdin.write(b"go\n")
        self.p.stdin.flush()

    def close(self):
        self.watchdog.cancel()
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(timeout=30)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.p.kill()
                self.p.wait()


def test_vite_dev_server_renders_and_hot_updates_in_chromium(d, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("%s is missing (Debian's chromium; scripts/install-deps.sh installs it)" % CHROMIUM)
    node_modules = npm_modules(E2E)
    tar_path = os.path.join(str(tmp_path), "bundle.tar")
    build_bundle(tar_path, node_modules)

    sid = create_sandbox(d, image=IMAGE)["id"]
    driver = None
    try:
        put_file(d, sid, "/tmp/bundle.tar", tar_path)
        r = exec_(d, sid, "tar -xf /tmp/bundle.tar -C / && rm /tmp/bundle.tar && /opt/node/bin/node --version")
        assert r["exit_code"] == 0 and r["stdout"].startswith("v"), r
        exec_(d, sid, "cd /srv/app && (HMR_CLIENT_PORT=%d VITE_PORT=%d setsid /opt/node/bin/node "
                      "node_modules/vite/bin/vite.js > /tmp/vite.log 2>&1 &)" % (d.port, VITE_PORT))

        host = "%d-%s.localhost:%d" % (VITE_PORT, sid, d.port)
        deadline, last = time.time() + 90, None
        while time.time() < deadline:
            last = proxied_get(d, host)
            if last[0] == 200 and 'id="msg"' in last[1]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("vite did not come up through the proxy: %r\nvite.log:\n%s"
                                 % (last, exec_(d, sid, "cat /tmp/vite.log")["stdout"]))

        driver = Driver("http://%s/" % host, node_modules)
        ready = driver.message()
        assert ready["phase"] == "ready", ready
        assert ready["status"] == 200, ready
        assert ready["text"] == BEFORE, ready
        assert ready["hmr_connected"], ready  # Vite's HMR client logged "[vite] connected." (WebSocket up)
        assert any(u.startswith("ws://%s/" % host) for u in ready["websockets"]), ready

        # Edit the source inside the sandbox, as an editor (or an agent) in it would.
        s, body, _ = d.request("PUT", "/v1/sandboxes/%s/files?path=/srv/app/message.js" % sid,
                               body=('export const message = "%s";\n' % AFTER).encode())
        assert s == 200, body
        driver.go_on()
        done = driver.message()
        log = exec_(d, sid, "cat /tmp/vite.log")["stdout"]
        print("driver:", json.dumps(ready), json.dumps(done), "vite.log:", log, sep="\n")
        assert done["phase"] == "done", (done, log)
        assert done["updated"] and done["text"] == AFTER, (done, log)
        assert done["marker"] == 1, (done, log)  # same page: no full reload
        assert done["navigations_during_edit"] == 0, (done, log)
        assert done["hot_updated"], (done, log)  # "[vite] hot updated: /message.js"
    finally:
        if driver:
            driver.close()
        destroy_sandbox(d, sid)
