"""The blocking SDK against a real daemon: lifecycle, exec, streaming exec, errors, config."""
import os
import re
import threading
import time

import pytest

from warren import (Client, DestroyStats, ExecResult, Sandbox, SandboxInfo, WarrenConnectionError,
                    WarrenError, WarrenTimeoutError)


# --- lifecycle ----------------------------------------------------------------------------------

def test_with_creates_a_running_sandbox_and_destroys_it_on_exit(daemon):
    with Sandbox(vcpus=1, mem_mib=256, disk_mib=128, timeout=10, sandbox_timeout=60,
                 metadata={"who": "sdk-test"}) as sb:
        info = sb.info
        assert isinstance(info, SandboxInfo)
        assert re.fullmatch(r"[0-9a-f]{16}", info.id) and sb.id == info.id
        assert (info.image, info.vcpus, info.mem_mib, info.disk_mib, info.state) == \
            ("busybox:latest", 1, 256, 128, "running")
        assert info.create_ms > 0 and info.metadata == {"who": "sdk-test"}
        assert info.id in [s.id for s in Sandbox.list()]
    status, _, _ = daemon.request("GET", "/v1/sandboxes/" + info.id)
    assert status == 404


def test_create_and_destroy_without_with_return_info_and_measured_stats(daemon):
    sb = Sandbox("busybox:latest", sandbox_timeout=60)
    with pytest.raises(WarrenError):
        sb.id  # not created yet
    info = sb.create()
    assert sb.exec("echo up").stdout == "up\n"
    stats = sb.destroy()
    assert isinstance(stats, DestroyStats)
    assert stats.uptime_ms > 0 and stats.mem_peak_bytes > 0 and stats.cpu_ms >= 0
    with pytest.raises(WarrenError) as e:
        sb.destroy()
    assert (e.value.code, e.value.error_code) == (404, "not_found")
    assert info.id in str(e.value)


def test_connect_attaches_to_an_existing_sandbox_and_refresh_rereads_it(sb):
    other = Sandbox.connect(sb.id)
    assert other.info == sb.info
    assert other.exec("echo same").stdout == "same\n"
    assert other.refresh().state == "running"


def test_env_from_create_reaches_every_command(daemon):
    with Sandbox(env={"FROM_CREATE": "yes"}, sandbox_timeout=60) as sb:
        assert sb.exec("echo $FROM_CREATE").stdout == "yes\n"


# --- exec ---------------------------------------------------------------------------------------

def test_exec_returns_output_and_exit_code_and_a_failure_is_not_an_exception(sb):
    out = sb.exec("echo out; echo err >&2; exit 7")
    assert isinstance(out, ExecResult)
    assert (out.stdout, out.stderr, out.exit_code, out.ok) == ("out\n", "err\n", 7, False)
    assert sb.exec("true").ok
    assert out.duration_ms >= 0


def test_exec_passes_env_cwd_and_stdin(sb):
    out = sb.exec("pwd; echo $A; cat", env={"A": "1"}, cwd="/tmp", stdin="from stdin")
    assert out.stdout == "/tmp\n1\nfrom stdin"


def test_exec_past_its_timeout_raises_with_the_partial_output(sb):
    t0 = time.time()
    with pytest.raises(WarrenTimeoutError) as e:
        sb.exec("echo started; sleep 30", timeout=1)
    assert time.time() - t0 < 10
    assert (e.value.code, e.value.error_code, e.value.stdout) == (504, "timeout", "started\n")
    assert isinstance(e.value, WarrenError)
    assert sb.exec("echo still usable").ok


def test_exec_rejects_an_empty_command_before_sending_it(sb):
    with pytest.raises(ValueError):
        sb.exec("")


def test_bad_input_is_a_400_warren_error_with_the_api_code(daemon):
    with pytest.raises(WarrenError) as e:
        Sandbox(vcpus=0).create()
    assert (e.value.code, e.value.error_code) == (400, "bad_request")
    with pytest.raises(WarrenError) as e:
        Sandbox("no-such-image:1").create()
    assert (e.value.code, e.value.error_code) == (404, "not_found")


def test_many_calls_reuse_one_keep_alive_connection(sb):
    for i in range(20):
        assert sb.exec("echo %d" % i).stdout == "%d\n" % i
    assert len(sb._t._idle) == 1


def test_concurrent_threads_share_a_sandbox_object(sb):
    results = {}

    def run(i):
        results[i] = sb.exec("sleep 0.2; echo %d" % i).stdout

    threads = [threading.Thread(target=run, args=(i,)) for i in range(5)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: "%d\n" % i for i in range(5)}
    assert time.time() - t0 < 0.2 * 5  # they ran in parallel, each on its own connection


# --- exec_stream --------------------------------------------------------------------------------

def test_exec_stream_calls_back_per_chunk_as_the_output_appears(sb):
    seen = []
    t0 = time.time()
    out = sb.exec_stream("echo one; sleep 1; echo two >&2; sleep 1; echo three",
                         on_stdout=lambda c: seen.append(("out", c, time.time() - t0)),
                         on_stderr=lambda c: seen.append(("err", c, time.time() - t0)))
    assert [(k, c) for k, c, _ in seen] == [("out", "one\n"), ("err", "two\n"), ("out", "three\n")]
    assert seen[0][2] < 0.9, "the first chunk came only at the end: %r" % seen
    assert seen[1][2] < 1.9
    assert (out.stdout, out.stderr, out.exit_code) == ("one\nthree\n", "two\n", 0)


def test_exec_stream_returns_the_exit_code_and_leaves_the_client_usable(sb):
    assert sb.exec_stream("exit 4").exit_code == 4
    assert sb.exec_stream("echo x", on_stdout=None).stdout == "x\n"
    assert sb.exec("echo y").stdout == "y\n"


def test_exec_stream_past_its_timeout_raises_with_the_partial_output(sb):
    with pytest.raises(WarrenTimeoutError) as e:
        sb.exec_stream("echo started; sleep 30", timeout=1)
    assert e.value.error_code == "timeout" and e.value.stdout == "started\n"


def test_exec_stream_of_a_large_output_arrives_whole(sb):
    chunks = []
    out = sb.exec_stream("seq 1 200000", on_stdout=chunks.append)
    assert out.stdout == "".join("%d\n" % i for i in range(1, 200001))
    assert len(chunks) > 1


def test_an_exception_in_a_callback_stops_the_stream_and_propagates(sb):
    def boom(_):
        raise RuntimeError("stop")
    with pytest.raises(RuntimeError):
        sb.exec_stream("while true; do echo y; sleep 0.1; done", on_stdout=boom, timeout=20)
    assert sb.exec("echo fine").stdout == "fine\n"


# --- errors and configuration -------------------------------------------------------------------

def test_a_wrong_key_is_401(daemon):
    with pytest.raises(WarrenError) as e:
        Sandbox.list(api_key="wrn_live_local_0000_0000")
    assert (e.value.code, e.value.error_code) == (401, "unauthorized")


def test_an_unreachable_server_is_a_connection_error():
    with pytest.raises(WarrenConnectionError):
        Sandbox.list(api_url="http://127.0.0.1:1", api_key="x")


def test_the_local_admin_key_file_is_used_when_no_key_is_configured(daemon, monkeypatch):
    monkeypatch.delenv("WARREN_API_KEY")
    monkeypatch.setenv("WARREN_DATA_DIR", daemon.data_dir)
    assert Sandbox().api_key == daemon.admin_key
    assert isinstance(Sandbox.list(), list)


def test_no_local_key_file_is_read_for_a_remote_server(daemon, monkeypatch):
    monkeypatch.delenv("WARREN_API_KEY")
    monkeypatch.setenv("WARREN_DATA_DIR", daemon.data_dir)
    assert Sandbox(api_url="https://warren.example.com").api_key is None


def test_tenant_keys_see_only_their_own_sandboxes(daemon, sb):
    client = Client()
    key = client.create_key("sdktenant")
    assert key.key.startswith("wrn_live_") and key.tenant == "sdktenant" and not key.admin
    with pytest.raises(WarrenError) as e:
        Sandbox.connect(sb.id, api_key=key.key)
    assert e.value.code == 404
    assert Sandbox.list(api_key=key.key) == []
    client.revoke_key(key.key_id)
    with pytest.raises(WarrenError) as e:
        Sandbox.list(api_key=key.key)
    assert e.value.code == 401


def test_client_info_lists_the_images(daemon):
    assert "busybox:latest" in Client().info()["images"]
