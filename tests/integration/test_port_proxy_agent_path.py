"""The port proxy's agent path (net/port_upstream.cpp): how it reaches a server bound to a
sandbox's loopback when it cannot make a socket in the sandbox's network, as for a microVM. A
jail's network namespace can always be entered, so this module runs a daemon with
`--proxy-loopback agent` and repeats test_port_proxy's faithfulness tests against the
loopback-bound app: collected here, they use this module's fixtures (its daemon, its `port`)."""
import subprocess

import pytest

import test_port_proxy as base
from test_port_proxy import APP_PORT, IMAGE, proxied, start_app, upstream_opened
from warren_harness import WARREN, Daemon, cleanup_sandboxes, create_sandbox, destroy_sandbox, exec_, shared_images


# test_port_proxy's tests that take the `port` fixture, collected here as tests of this module
# (so with its fixtures below).
REPEATED = [name for name in dir(base) if name.startswith("test_") and "port" in
            base.__dict__[name].__code__.co_varnames[:base.__dict__[name].__code__.co_argcount]]
globals().update({name: getattr(base, name) for name in REPEATED})


@pytest.fixture(scope="module")
def d():
    dm = Daemon(images=shared_images(("busybox:latest", IMAGE)),
                extra_args=["--default-image", IMAGE, "--proxy-loopback", "agent"]).start()
    yield dm
    cleanup_sandboxes(dm)
    dm.close()


@pytest.fixture(scope="module")
def sb(d):
    obj = create_sandbox(d, image=IMAGE)
    start_app(d, obj["id"])
    yield obj["id"]
    destroy_sandbox(d, obj["id"])


@pytest.fixture
def port():
    return APP_PORT


def test_a_server_on_loopback_is_reached_through_the_agent(d, sb):
    before = upstream_opened(d)
    start_app(d, sb, 8020, "127.0.0.1")
    s, got, _ = proxied(d, sb, "GET", "/peer", port=8020)
    assert s == 200 and got["peer_host"] == "127.0.0.1", got
    after = upstream_opened(d)
    assert after["agent"] > before["agent"], (before, after)
    assert after["loopback"] == before["loopback"], (before, after)


def test_without_a_namespace_a_server_on_all_interfaces_is_reached_on_the_sandbox_address(d, sb):
    before = upstream_opened(d)
    start_app(d, sb, 8022, "0.0.0.0")
    s, got, _ = proxied(d, sb, "GET", "/peer", port=8022)
    gw = exec_(d, sb, "ip -4 route show default")["stdout"].split()[2]
    assert s == 200 and got["peer_host"] == gw, got
    after = upstream_opened(d)
    assert after["address"] > before["address"], (before, after)
    assert after["loopback"] == before["loopback"], (before, after)


def test_proxy_loopback_takes_only_netns_or_agent(tmp_path):
    r = subprocess.run([WARREN, "serve", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0",
                        "--proxy-loopback", "vsock"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert 'proxy-loopback must be netns or agent, not "vsock"' in r.stderr + r.stdout
