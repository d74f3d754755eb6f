"""The foundation: health, auth, the error model, keys (and their revocation surviving a
restart), metrics, info, TLS, and a clean SIGTERM — against a real `warren serve`."""
import os
import signal
import stat
import subprocess

import pytest

from warren_harness import Daemon, assert_error


def test_healthz_needs_no_key(daemon):
    status, body, _ = daemon.request("GET", "/healthz", key=None)
    assert status == 200 and body == "ok"


def test_admin_key_file_is_private(daemon):
    st = os.stat(os.path.join(daemon.data_dir, "admin.key"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert daemon.admin_key.startswith("wrn_live_local_")


@pytest.mark.parametrize("path", ["/v1/info", "/v1/sandboxes", "/v1/no/such/route", "/metrics",
                                  "/v1/admin/keys"])
def test_missing_key_is_401_on_every_route(daemon, path):
    status, body, _ = daemon.request("GET", path, key=None)
    assert_error(status, body, 401, "unauthorized")


def test_forged_truncated_and_garbage_keys_are_401(daemon):
    k = daemon.admin_key
    forged = k[:-1] + ("0" if k[-1] != "0" else "1")
    for bad in [forged, k[:-5], k + "x", "wrn_live_local_abc_" + "0" * 32, "garbage", "Bearer"]:
        status, body, _ = daemon.request("GET", "/v1/info", key=bad)
        assert_error(status, body, 401, "unauthorized")
    status, body, _ = daemon.request("GET", "/v1/info", key=None, headers={"Authorization": "Basic " + k})
    assert_error(status, body, 401, "unauthorized")


def test_info_reports_version_node_and_detected_drivers(daemon):
    status, body, _ = daemon.request("GET", "/v1/info")
    assert status == 200
    assert body["version"] and body["node"] == "n1"
    assert body["nodes"][0]["state"] == "up"
    assert body["nodes"][0]["address"] == "127.0.0.1:%d" % daemon.port
    for drv in ("jail", "microvm"):
        assert isinstance(body["drivers"][drv]["available"], bool)
        if not body["drivers"][drv]["available"]:
            assert body["drivers"][drv]["reason"]
    # microvm is not built yet, but says what the host offers it (docs/design/microvm.md).
    microvm = body["drivers"]["microvm"]
    assert microvm["available"] is False and "not built yet" in microvm["reason"]
    assert microvm["accel"] in ("kvm", "tcg") and microvm["accel_reason"]
    assert isinstance(microvm["qemu"], bool) and isinstance(microvm["firmware"], bool)
    assert isinstance(body["images"], list)


def test_unknown_route_and_method_are_json_404(daemon):
    status, body, _ = daemon.request("GET", "/v1/nothing-here")
    assert_error(status, body, 404, "not_found")
    status, body, hdrs = daemon.request("DELETE", "/v1/info")
    assert_error(status, body, 404, "not_found")
    assert hdrs["allow"] == "GET"
    status, body, _ = daemon.request("BREW", "/v1/info")
    assert_error(status, body, 404, "not_found")


def test_malformed_json_unknown_fields_and_wrong_types_are_400(daemon):
    for body in ["{", "[]", "\"x\"", '{"tenant": 5}', '{"tenant": "a", "admin": "yes"}',
                 '{"tenant": "a", "surprise": 1}', '{}', '{"tenant": "Not Valid!"}']:
        status, resp, _ = daemon.request("POST", "/v1/admin/keys", body=body)
        assert_error(status, resp, 400, "bad_request")


def test_oversized_body_is_413(daemon):
    status, body, _ = daemon.request("POST", "/v1/admin/keys", body="x" * (17 * 1024 * 1024))
    assert_error(status, body, 413, "payload_too_large")
    # the daemon is still fine
    assert daemon.request("GET", "/healthz", key=None)[0] == 200


def test_oversized_headers_are_413(daemon):
    status, body, _ = daemon.request("GET", "/v1/info", headers={"X-Big": "a" * 20000})
    assert_error(status, body, 413, "payload_too_large")


def test_garbage_http_gets_a_json_400_and_no_crash(daemon):
    out = daemon.raw(b"\x16\x03\x01garbage that is not http\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    assert b'"bad_request"' in out
    out = daemon.raw(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    out = daemon.raw(b"GET nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 4")
    assert daemon.request("GET", "/healthz", key=None)[0] == 200


def test_tenant_names_are_dns_labels(daemon):
    status, body, _ = daemon.request("POST", "/v1/admin/keys", body={"tenant": "acme-corp"})
    assert status == 201, body
    assert body["tenant"] == "acme-corp"
    assert daemon.request("GET", "/v1/sandboxes", key=body["key"])[0] == 200
    for bad in ["-acme", "acme-", "Acme", "acme_corp", "a" * 64]:
        status, resp, _ = daemon.request("POST", "/v1/admin/keys", body={"tenant": bad})
        assert_error(status, resp, 400, "bad_request")


def test_tenant_key_gets_403_on_admin_routes(daemon):
    status, body, _ = daemon.request("POST", "/v1/admin/keys", body={"tenant": "acme"})
    assert status == 201, body
    assert body["tenant"] == "acme" and body["admin"] is False
    assert body["key"].startswith("wrn_live_local_" + body["key_id"] + "_")
    tk = body["key"]
    assert daemon.request("GET", "/v1/info", key=tk)[0] == 200
    for method, path, b in [("GET", "/metrics", None), ("GET", "/v1/admin/actors", None),
                            ("POST", "/v1/admin/keys", {"tenant": "x"}),
                            ("DELETE", "/v1/admin/keys/" + body["key_id"], None)]:
        status, resp, _ = daemon.request(method, path, body=b, key=tk)
        assert_error(status, resp, 403, "forbidden")


def test_metrics_are_prometheus_text(daemon):
    daemon.request("GET", "/v1/info")
    status, text, hdrs = daemon.request("GET", "/metrics")
    assert status == 200 and hdrs["content-type"].startswith("text/plain")
    assert 'warren_http_requests_total{method="GET",route="/v1/info",status="200"}' in text
    assert "warren_http_request_duration_seconds_bucket" in text
    assert 'warren_actors{kind="node"} 1' in text


def test_admin_actor_tree_lists_the_node(daemon):
    status, body, _ = daemon.request("GET", "/v1/admin/actors")
    assert status == 200
    assert body["nodes"][0]["kind"] == "node" and body["nodes"][0]["id"] == "n1"


def test_revocation_is_immediate_and_survives_restart():
    d = Daemon().start()
    try:
        status, body, _ = d.request("POST", "/v1/admin/keys", body={"tenant": "acme"})
        assert status == 201
        key, key_id = body["key"], body["key_id"]
        status, body, _ = d.request("POST", "/v1/admin/keys", body={"tenant": "ops", "admin": True})
        admin2 = body["key"]
        assert d.request("GET", "/v1/info", key=key)[0] == 200
        status, _, _ = d.request("DELETE", "/v1/admin/keys/" + key_id, key=admin2)
        assert status == 204
        status, resp, _ = d.request("GET", "/v1/info", key=key)
        assert_error(status, resp, 401, "unauthorized")
        status, resp, _ = d.request("DELETE", "/v1/admin/keys/ffffffffffffffff")
        assert_error(status, resp, 404, "not_found")
        admin_before = d.admin_key
        assert d.kill9() == -signal.SIGKILL  # not even a clean shutdown
        d.start()
        status, resp, _ = d.request("GET", "/v1/info", key=key)
        assert_error(status, resp, 401, "unauthorized")
        assert d.request("GET", "/v1/info", key=admin2)[0] == 200
        assert d.admin_key == admin_before  # not re-minted
    finally:
        d.close()


def test_sigterm_finishes_and_exits_zero():
    d = Daemon().start()
    try:
        assert d.request("GET", "/v1/info")[0] == 200
        assert d.stop(signal.SIGTERM) == 0
        assert "stopped" in d.log()
    finally:
        d.close()


def test_config_file_and_flags(tmp_path):
    conf = tmp_path / "warren.ini"
    conf.write_text('[global]\nregion="eu1"\nnode-id="alpha"\n')
    d = Daemon(extra_args=["--config", str(conf), "--node-id", "beta"]).start()
    try:
        assert d.admin_key.startswith("wrn_live_eu1_")
        assert d.request("GET", "/v1/info")[1]["node"] == "beta"  # flags beat the file
    finally:
        d.close()
    bad = subprocess.run([d.proc.args[0], "serve", "--bogus"], capture_output=True, text=True)
    assert bad.returncode == 2 and "bogus" in bad.stderr


def test_tls_with_a_self_signed_certificate(tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    d = Daemon(tls=(cert, key)).start()
    try:
        status, body, _ = d.request("GET", "/v1/info")
        assert status == 200 and body["node"] == "n1"
        # plain HTTP on a TLS port gets nothing useful, and the daemon stays up
        d.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
        assert d.request("GET", "/healthz", key=None)[0] == 200
    finally:
        d.close()


def test_oversized_chunked_body_is_413(daemon):
    c = daemon.conn()
    c.putrequest("POST", "/v1/admin/keys")
    c.putheader("Authorization", "Bearer " + daemon.admin_key)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    chunk = b"x" * 65536
    try:
        for _ in range(17 * 16):
            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        c.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = c.getresponse()
    assert r.status == 413
    assert b"payload_too_large" in r.read()
    c.close()


def test_idle_and_slow_connections_are_closed_after_the_idle_timeout_busy_ones_are_not():
    import socket
    import time
    d = Daemon(extra_args=["--idle-timeout", "1"]).start()

    def closed_within(sock, secs):
        sock.settimeout(secs)
        try:
            while sock.recv(65536):
                pass
            return True  # EOF: the daemon closed it
        except socket.timeout:
            return False

    try:
        # An idle keep-alive connection, after one request.
        idle = socket.create_connection(("127.0.0.1", d.port))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.settimeout(5)
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        # A slow client that never finishes its request head.
        slow = socket.create_connection(("127.0.0.1", d.port))
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        # A busy connection: a request every 0.3 s for 2.4 s outlives the 1 s timeout.
        busy = socket.create_connection(("127.0.0.1", d.port))
        busy.settimeout(5)
        t0 = time.time()
        for _ in range(8):
            busy.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert busy.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.3)
        assert time.time() - t0 > 2
        assert closed_within(idle, 3)
        assert closed_within(slow, 3)
        assert closed_within(busy, 3)  # and once idle, it goes too
        for s in (idle, slow, busy):
            s.close()
    finally:
        d.close()
