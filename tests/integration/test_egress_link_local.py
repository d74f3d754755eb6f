"""Egress: link-local addresses (where a cloud's metadata service answers, 169.254.169.254) are never
reachable from a sandbox, whatever its network profile. The "internet" host is a network namespace
this test creates, routed from the host, with 169.254.169.254 and a public-looking control address
(198.51.100.2, TEST-NET-2) both served by one python http server in it."""
import os
import subprocess
import time
import uuid

import pytest

from warren_harness import create_sandbox, destroy_sandbox, exec_

META = "169.254.169.254"
CONTROL = "198.51.100.2"
PORT = 8089


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@pytest.fixture(scope="module")
def internet_host():
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = "wt-egr-" + tag, "wte" + tag, "wtn" + tag
    sh("ip", "netns", "add", ns)
    server = None
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", "198.51.100.1/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", CONTROL + "/24", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", META + "/32", "dev", "lo")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "route", "add", META + "/32", "via", CONTROL, "dev", host_if)
        www = "/tmp/" + ns
        os.makedirs(www, exist_ok=True)
        with open(www + "/index.html", "w") as f:
            f.write("hello-from-the-internet-host\n")
        server = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-m", "http.server",
                                   "--bind", "0.0.0.0", str(PORT)], cwd=www,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # the host itself reaches both addresses: the listener and the routes work
        deadline = time.time() + 10
        for addr in (CONTROL, META):
            while True:
                r = sh("curl", "-s", "-m", "2", "http://%s:%d/index.html" % (addr, PORT), check=False)
                if "hello-from-the-internet-host" in r.stdout:
                    break
                assert time.time() < deadline, "the test's own host never answered on " + addr
                time.sleep(0.2)
        yield
    finally:
        if server:
            server.terminate()
            server.wait()
        sh("ip", "route", "del", META + "/32", check=False)
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "netns", "del", ns, check=False)


def fetch(daemon, sid, addr):
    r = exec_(daemon, sid, "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 %s %d; echo rc=$?"
              % (addr, PORT), timeout=20, expect=None)
    return r["stdout"]


@pytest.mark.parametrize("profile", ["internet", "default"])
def test_link_local_is_unreachable_and_the_same_listener_elsewhere_is_reachable(daemon, internet_host, profile):
    sb = create_sandbox(daemon, network_profile=profile, sandbox_timeout=-1)
    try:
        # control: the same listener on a non-link-local address answers, so the refusal is real
        deadline = time.time() + 10
        while "hello-from-the-internet-host" not in fetch(daemon, sb["id"], CONTROL):
            assert time.time() < deadline, "the control address never answered the sandbox"
            time.sleep(0.3)
        out = fetch(daemon, sb["id"], META)
        assert "hello-from-the-internet-host" not in out, out
    finally:
        destroy_sandbox(daemon, sb["id"])
