"""Sandboxes on the jail driver through the API: create/list/get/destroy, exec (env, cwd,
stdin, exit codes, output caps, timeouts), streaming exec, idle destroy and bad input — against
a real `warren serve` with the tiny busybox image."""
import re
import threading
import time

import pytest

from warren_harness import (TEST_IMAGE, assert_error, create_sandbox, daemon_rss_bytes,
                            destroy_sandbox, exec_, sandbox, sse_events)

API_FIELDS = {"id": str, "image": str, "state": str, "isolation": str, "node": str, "vcpus": int,
              "mem_mib": int, "disk_mib": int, "timeout": int, "sandbox_timeout": int,
              "network_profile": str, "created_at": str, "create_ms": (int, float),
              "parent_id": type(None), "metadata": dict}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def tenant_key(daemon, tenant):
    status, body, _ = daemon.request("POST", "/v1/admin/keys", body={"tenant": tenant})
    assert status == 201, body
    return body["key"]


@pytest.fixture(scope="module")
def sb(daemon):
    """One long-lived sandbox for the exec tests that do not care about a fresh one."""
    obj = create_sandbox(daemon, env={"FROM_CREATE": "yes"}, sandbox_timeout=-1)
    yield obj
    destroy_sandbox(daemon, obj["id"])


# --- create / read / destroy ------------------------------------------------------------------

def test_create_answers_201_with_a_running_sandbox_shaped_like_api_md(daemon):
    t0 = time.time()
    status, body, hdrs = daemon.request("POST", "/v1/sandboxes", {"image": TEST_IMAGE})
    wall_ms = (time.time() - t0) * 1000
    try:
        assert status == 201, body
        assert hdrs["content-type"].startswith("application/json")
        for k, t in API_FIELDS.items():
            assert k in body and isinstance(body[k], t), (k, body)
        assert re.fullmatch(r"[0-9a-f]{16}", body["id"])
        assert body["state"] == "running"
        assert body["image"] == TEST_IMAGE and body["node"] == "n1"
        # the documented defaults
        assert (body["isolation"], body["vcpus"], body["mem_mib"], body["disk_mib"], body["timeout"],
                body["sandbox_timeout"], body["network_profile"], body["metadata"]) == \
            ("jail", 1, 1024, 10240, 30, 300, "default", {})
        assert RFC3339.match(body["created_at"]), body["created_at"]
        # measured, not invented: positive and no longer than the whole request took
        assert 0 < body["create_ms"] <= wall_ms, (body["create_ms"], wall_ms)
        # and it really runs
        assert exec_(daemon, body["id"], "echo up")["stdout"] == "up\n"
    finally:
        if status == 201:
            destroy_sandbox(daemon, body["id"])


def test_sandbox_object_has_exactly_the_api_md_fields(daemon):
    with sandbox(daemon) as obj:
        assert set(obj) == set(API_FIELDS)


def test_create_echoes_the_requested_settings(daemon):
    with sandbox(daemon, vcpus=2, mem_mib=128, disk_mib=64, timeout=7, sandbox_timeout=-1,
                 metadata={"team": "a", "n": [1, 2]}) as obj:
        assert (obj["vcpus"], obj["mem_mib"], obj["disk_mib"], obj["timeout"], obj["sandbox_timeout"]) == \
            (2, 128, 64, 7, -1)
        assert obj["metadata"] == {"team": "a", "n": [1, 2]}
        status, got, _ = daemon.request("GET", "/v1/sandboxes/" + obj["id"])
        assert status == 200 and got == obj


def test_create_without_an_image_uses_the_node_default_image(daemon):
    status, body, _ = daemon.request("POST", "/v1/sandboxes", {})
    assert status == 201, body
    destroy_sandbox(daemon, body["id"])
    assert body["image"] == TEST_IMAGE  # the fixture starts the daemon with --default-image


def test_get_returns_the_sandbox_object(daemon, sb):
    status, body, _ = daemon.request("GET", "/v1/sandboxes/" + sb["id"])
    assert status == 200
    assert body == sb


def test_list_shows_only_the_callers_tenant_and_admin_sees_all(daemon):
    ka, kb = tenant_key(daemon, "lista"), tenant_key(daemon, "listb")
    with sandbox(daemon, key=ka) as a, sandbox(daemon, key=kb) as b:
        def ids(key):
            status, body, _ = daemon.request("GET", "/v1/sandboxes", key=key)
            assert status == 200 and set(body) == {"sandboxes"}
            return {s["id"] for s in body["sandboxes"]}
        assert ids(ka) == {a["id"]}
        assert ids(kb) == {b["id"]}
        assert {a["id"], b["id"]} <= ids("admin")
        # the tenant's own view is the full object
        status, body, _ = daemon.request("GET", "/v1/sandboxes", key=ka)
        assert body["sandboxes"][0]["state"] == "running" and body["sandboxes"][0]["id"] == a["id"]


def test_another_tenants_sandbox_answers_404_exactly_like_a_nonexistent_one(daemon):
    ka, kb = tenant_key(daemon, "owner"), tenant_key(daemon, "snoop")
    missing = "0123456789abcdef"
    with sandbox(daemon, key=ka) as a:
        for method, suffix, body in [("GET", "", None), ("DELETE", "", None),
                                     ("POST", "/exec", {"command": "id"}),
                                     ("POST", "/exec/stream", {"command": "id"})]:
            s1, b1, _ = daemon.request(method, "/v1/sandboxes/" + a["id"] + suffix, body, key=kb)
            s2, b2, _ = daemon.request(method, "/v1/sandboxes/" + missing + suffix, body, key=kb)
            assert_error(s1, b1, 404, "not_found")
            assert_error(s2, b2, 404, "not_found")
            assert b1["error"]["message"].replace(a["id"], "ID") == b2["error"]["message"].replace(missing, "ID")
        # untouched by the attempts: the owner still has it, running
        status, body, _ = daemon.request("GET", "/v1/sandboxes/" + a["id"], key=ka)
        assert status == 200 and body["state"] == "running"
        # and the admin sees it too
        assert daemon.request("GET", "/v1/sandboxes/" + a["id"])[0] == 200


def test_destroy_answers_measured_stats_and_a_second_delete_is_404(daemon):
    obj = create_sandbox(daemon)
    t0 = time.time()
    # burn some CPU, touch some memory, write 2 MiB to the disk
    exec_(daemon, obj["id"], "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; "
          "x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ${#x}; "
          "dd if=/dev/urandom of=/root/blob bs=1M count=2 2>/dev/null; sync")
    time.sleep(0.3)
    lived_ms = (time.time() - t0) * 1000  # a lower bound: create answered before t0
    status, stats, _ = daemon.request("DELETE", "/v1/sandboxes/" + obj["id"])
    assert status == 200, stats
    assert set(stats) == {"cpu_ms", "mem_peak_bytes", "disk_used_bytes", "uptime_ms"}
    assert all(isinstance(v, int) for v in stats.values()), stats
    assert stats["cpu_ms"] >= 50, stats                    # the busy loop alone takes more
    assert stats["mem_peak_bytes"] >= 4_000_000, stats     # the 4 MB string was in memory
    assert stats["disk_used_bytes"] >= 2 * 1024 * 1024, stats
    assert lived_ms <= stats["uptime_ms"] < lived_ms + 60_000, (stats, lived_ms)
    status, body, _ = daemon.request("DELETE", "/v1/sandboxes/" + obj["id"])
    assert_error(status, body, 404, "not_found")
    status, body, _ = daemon.request("GET", "/v1/sandboxes/" + obj["id"])
    assert_error(status, body, 404, "not_found")
    status, body, _ = daemon.request("GET", "/v1/sandboxes")
    assert obj["id"] not in {s["id"] for s in body["sandboxes"]}


def test_concurrent_deletes_answer_200_once_and_404_for_the_others(daemon):
    obj = create_sandbox(daemon)
    results = []

    def delete():
        status, body, _ = daemon.request("DELETE", "/v1/sandboxes/" + obj["id"])
        results.append((status, body))
    threads = [threading.Thread(target=delete) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 404, 404], results
    for status, body in results:
        if status == 404:
            assert_error(status, body, 404, "not_found")


def test_exec_on_a_destroyed_sandbox_is_404(daemon):
    obj = create_sandbox(daemon)
    destroy_sandbox(daemon, obj["id"])
    status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/exec" % obj["id"], {"command": "true"})
    assert_error(status, body, 404, "not_found")
    status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/exec/stream" % obj["id"], {"command": "true"})
    assert_error(status, body, 404, "not_found")


# --- exec -------------------------------------------------------------------------------------

def test_exec_returns_exit_code_and_separate_stdout_and_stderr(daemon, sb):
    r = exec_(daemon, sb["id"], "echo out; echo err >&2; echo out2; exit 3")
    assert r["exit_code"] == 3
    assert r["stdout"] == "out\nout2\n" and r["stderr"] == "err\n"
    assert isinstance(r["duration_ms"], (int, float)) and r["duration_ms"] > 0
    assert r.get("truncated", False) is False
    assert exec_(daemon, sb["id"], "true")["exit_code"] == 0
    assert exec_(daemon, sb["id"], "exit 255")["exit_code"] == 255
    # killed by a signal → 128 + signal, like a shell
    assert exec_(daemon, sb["id"], "kill -9 $$")["exit_code"] == 137
    assert exec_(daemon, sb["id"], "no-such-command-here")["exit_code"] == 127


def test_exec_runs_under_sh_c_as_root(daemon, sb):
    r = exec_(daemon, sb["id"], "a=1; b=$((a+1)); echo $b | tr 2 X; id -u")
    assert r["stdout"] == "X\n0\n"


def test_exec_passes_env_over_the_sandbox_env(daemon, sb):
    r = exec_(daemon, sb["id"], 'echo "$A|$B|$FROM_CREATE"', env={"A": "1", "B": "two words"})
    assert r["stdout"] == "1|two words|yes\n", r
    r = exec_(daemon, sb["id"], 'echo "$FROM_CREATE"', env={"FROM_CREATE": "overridden"})
    assert r["stdout"] == "overridden\n"


def test_exec_runs_in_cwd(daemon, sb):
    assert exec_(daemon, sb["id"], "pwd", cwd="/etc")["stdout"] == "/etc\n"
    exec_(daemon, sb["id"], "mkdir -p /root/work")
    assert exec_(daemon, sb["id"], "pwd", cwd="/root/work")["stdout"] == "/root/work\n"


def test_exec_relative_cwd_is_400(daemon, sb):
    status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/exec" % sb["id"], {"command": "pwd", "cwd": "etc"})
    assert_error(status, body, 400, "bad_request")
    assert "cwd" in body["error"]["message"]


def test_exec_missing_cwd_is_400_naming_it(daemon, sb):
    for path in ("/exec", "/exec/stream"):
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s%s" % (sb["id"], path),
                                         {"command": "pwd", "cwd": "/no/such/dir"})
        assert_error(status, body, 400, "bad_request")
        assert "/no/such/dir" in body["error"]["message"], body


def test_exec_feeds_stdin_then_eof(daemon, sb):
    r = exec_(daemon, sb["id"], "cat; echo done", stdin="line1\nline2\n")
    assert r["stdout"] == "line1\nline2\ndone\n"
    # no stdin at all: cat sees EOF at once instead of hanging until the timeout
    t0 = time.time()
    r = exec_(daemon, sb["id"], "cat; echo eof", timeout=10)
    assert r["stdout"] == "eof\n" and time.time() - t0 < 5
    # binary-safe enough for a megabyte
    big = "0123456789abcdef" * 65536
    r = exec_(daemon, sb["id"], "wc -c", stdin=big)
    assert r["stdout"].strip() == str(len(big))


def test_exec_output_that_is_not_utf8_becomes_u_fffd(daemon, sb):
    r = exec_(daemon, sb["id"], r"printf 'a\377b\303'; printf '\200x\342\202\254' >&2")
    assert r["stdout"] == "a\ufffdb\ufffd"
    assert r["stderr"] == "\ufffdx\u20ac"


def test_exec_100mb_of_stdout_is_capped_at_16mib_and_daemon_memory_stays_bounded(daemon, sb):
    exec_(daemon, sb["id"], "true")  # warm
    rss0 = daemon_rss_bytes(daemon)
    peak = [rss0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], daemon_rss_bytes(daemon))
            time.sleep(0.02)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        r = exec_(daemon, sb["id"], "yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | head -c 100000000; echo tail >&2", timeout=60)
    finally:
        done.set()
        t.join()
    assert r["exit_code"] == 0
    assert r["truncated"] is True
    assert len(r["stdout"]) == 16 * 1024 * 1024
    assert r["stderr"] == "tail\n"
    growth = peak[0] - rss0
    # The capped output, then its JSON rendering while it grows (measured: ~40 MiB here) — not
    # the 100 MB the command printed, and not a copy per layer (that was 64 MiB).
    assert growth < 16 * 1024 * 1024 * 3, "daemon RSS grew by %d MiB" % (growth >> 20)


def test_exec_past_its_timeout_is_504_with_partial_output_and_kills_the_process_group(daemon, sb):
    t0 = time.time()
    status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/exec" % sb["id"], {
        "command": "echo partial; echo half >&2; sleep 300 & echo $! > /tmp/bg.pid; sleep 300",
        "timeout": 1})
    took = time.time() - t0
    assert_error(status, {"error": {k: body["error"][k] for k in ("code", "message")}}, 504, "timeout")
    assert body["error"]["stdout"] == "partial\n" and body["error"]["stderr"] == "half\n"
    assert 0.9 < took < 5, took
    # the background grandchild in the same process group is gone too
    r = exec_(daemon, sb["id"], "kill -0 $(cat /tmp/bg.pid) 2>/dev/null && echo alive || echo gone; "
              "ps -o comm | grep -c '^sleep' || true")
    assert r["stdout"] == "gone\n0\n", r


def test_exec_without_timeout_uses_the_sandbox_default_timeout(daemon):
    with sandbox(daemon, timeout=1) as obj:
        t0 = time.time()
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/exec" % obj["id"], {"command": "sleep 30"})
        assert status == 504 and body["error"]["code"] == "timeout", body
        assert time.time() - t0 < 5


# --- streaming exec ---------------------------------------------------------------------------

def test_exec_stream_sends_each_event_as_it_is_produced(daemon, sb):
    events = list(sse_events(daemon, sb["id"],
                             "echo one; sleep 1; echo two >&2; sleep 1; echo three; exit 7"))
    names = [(e, d.get("data")) for e, d, _ in events]
    assert names == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n"), ("exit", None)], names
    times = [t for _, _, t in events]
    assert times[0] < 0.7, times              # flushed at once, not at the end
    assert 0.8 < times[1] - times[0] < 1.6, times
    assert 0.8 < times[2] - times[1] < 1.6, times
    exit_data = events[-1][1]
    assert exit_data["exit_code"] == 7 and exit_data["duration_ms"] >= 1900


def test_exec_stream_feeds_stdin_env_and_cwd(daemon, sb):
    events = list(sse_events(daemon, sb["id"], 'cat; echo "$X"; pwd', stdin="in\n", env={"X": "y"}, cwd="/etc"))
    out = "".join(d["data"] for e, d, _ in events if e == "stdout")
    assert out == "in\ny\n/etc\n"
    assert events[-1][0] == "exit" and events[-1][1]["exit_code"] == 0


def test_exec_stream_keeps_split_utf8_characters_whole(daemon, sb):
    # a 3-byte character written in two halves with a pause between them
    events = list(sse_events(daemon, sb["id"], r"printf '\342\202'; sleep 0.3; printf '\254\377'"))
    out = "".join(d["data"] for e, d, _ in events if e == "stdout")
    assert out == "\u20ac\ufffd"


def test_exec_stream_past_its_timeout_ends_with_an_error_event(daemon, sb):
    events = list(sse_events(daemon, sb["id"], "echo started; sleep 300", timeout=1))
    assert events[0][:2] == ("stdout", {"data": "started\n"})
    assert events[-1][0] == "error" and events[-1][1]["error"]["code"] == "timeout", events
    assert events[-1][1]["error"]["message"]
    assert events[-1][2] < 5


def test_exec_stream_to_a_client_that_does_not_read_holds_the_output_back(daemon, sb):
    rss0 = daemon_rss_bytes(daemon)
    gen = sse_events(daemon, sb["id"], "echo first; yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | head -c 200000000")
    ev = next(gen)
    assert ev[0] == "stdout" and ev[1]["data"].startswith("first\n")
    peak = rss0
    for _ in range(20):  # 2 s without reading: the command could print 200 MB meanwhile
        peak = max(peak, daemon_rss_bytes(daemon))
        time.sleep(0.1)
    gen.close()
    assert peak - rss0 < 32 * 1024 * 1024, "daemon RSS grew by %d MiB" % ((peak - rss0) >> 20)
    # the disconnect stopped the writer too
    deadline = time.time() + 5
    while exec_(daemon, sb["id"], "ps -o comm | grep -c -E '^(yes|head)$' || true")["stdout"] != "0\n":
        assert time.time() < deadline
        time.sleep(0.2)


def test_exec_stream_client_disconnect_kills_the_process_group(daemon, sb):
    gen = sse_events(daemon, sb["id"], "sleep 400 & echo started; sleep 400")
    ev = next(gen)
    assert ev[:2] == ("stdout", {"data": "started\n"})
    gen.close()  # closes the connection
    deadline = time.time() + 5
    while True:
        r = exec_(daemon, sb["id"], "ps -o comm | grep -c '^sleep' || true")
        if r["stdout"] == "0\n":
            break
        assert time.time() < deadline, "the streamed command's processes survived the disconnect"
        time.sleep(0.2)


# --- idle destroy -----------------------------------------------------------------------------

def listed(daemon, sid):
    """Whether the admin list shows the sandbox. Listing is not activity on it (a GET would be)."""
    status, body, _ = daemon.request("GET", "/v1/sandboxes")
    assert status == 200
    return sid in {s["id"] for s in body["sandboxes"]}


@pytest.fixture(scope="module")
def idle_trio(daemon):
    """Three sandboxes created together so their idle timers run concurrently: an idle one
    (sandbox_timeout 3), one running a detached CPU loop for 7 s (sandbox_timeout 2), and one
    that never expires (-1)."""
    t0 = time.time()
    idle = create_sandbox(daemon, sandbox_timeout=3)
    busy = create_sandbox(daemon, sandbox_timeout=2)
    never = create_sandbox(daemon, sandbox_timeout=-1)
    exec_(daemon, busy["id"], "setsid sh -c 'end=$(($(date +%s)+7)); while [ $(date +%s) -lt $end ]; do :; done' "
          "</dev/null >/dev/null 2>&1 &")
    t_busy = time.time()
    yield {"t0": t0, "idle": idle, "busy": busy, "never": never, "t_busy": t_busy}
    for s in (idle, busy, never):
        destroy_sandbox(daemon, s["id"])


def test_idle_sandbox_is_destroyed_after_its_sandbox_timeout(daemon, idle_trio):
    sid = idle_trio["idle"]["id"]
    while time.time() - idle_trio["t0"] < 2.5:
        assert listed(daemon, sid), "destroyed before its sandbox_timeout"
        time.sleep(0.25)
    deadline = idle_trio["t0"] + 3 + 4  # timeout + the idle check's period + slack
    while listed(daemon, sid):
        assert time.time() < deadline, "still there well after sandbox_timeout"
        time.sleep(0.25)
    status, body, _ = daemon.request("GET", "/v1/sandboxes/" + sid)
    assert_error(status, body, 404, "not_found")


def test_sandbox_busy_on_the_cpu_is_not_idle_destroyed(daemon, idle_trio):
    sid = idle_trio["busy"]["id"]
    # well past sandbox_timeout (2 s), while the loop still runs
    while time.time() - idle_trio["t_busy"] < 6:
        assert listed(daemon, sid), "a sandbox busy on the CPU was destroyed as idle"
        time.sleep(0.25)
    # once the loop ends it is idle like any other
    deadline = idle_trio["t_busy"] + 7 + 2 + 5
    while listed(daemon, sid):
        assert time.time() < deadline, "not destroyed after its work ended and it idled"
        time.sleep(0.25)


def test_sandbox_timeout_minus_one_is_never_idle_destroyed(daemon, idle_trio):
    sid = idle_trio["never"]["id"]
    # by now the others have expired (the tests above ran first) or we wait as long
    while time.time() - idle_trio["t0"] < 8:
        time.sleep(0.25)
    assert listed(daemon, sid)
    assert exec_(daemon, sid, "echo alive")["stdout"] == "alive\n"


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_id", ["XYZ", "0123456789ABCDEF", "0123456789abcdef0", "0123456789abcde",
                                    "0123456789abcdeg", "%2e%2e", "a" * 300])
def test_malformed_sandbox_ids_are_404(daemon, bad_id):
    for method, suffix, body in [("GET", "", None), ("DELETE", "", None),
                                 ("POST", "/exec", {"command": "id"}),
                                 ("POST", "/exec/stream", {"command": "id"})]:
        status, resp, _ = daemon.request(method, "/v1/sandboxes/" + bad_id + suffix, body)
        assert_error(status, resp, 404, "not_found")


def test_unknown_image_is_404(daemon):
    for image in ("nosuch:latest", "busybox:nosuchtag", "../../etc", ""):
        status, body, _ = daemon.request("POST", "/v1/sandboxes", {"image": image})
        if image == "":  # empty means "the default" or is refused; never a crash or a sandbox of nothing
            assert status in (201, 400, 404), body
            if status == 201:
                destroy_sandbox(daemon, body["id"])
            continue
        assert_error(status, body, 404, "not_found")


@pytest.mark.parametrize("fields", [
    {"vcpus": 0}, {"vcpus": 65}, {"vcpus": "1"}, {"vcpus": 1.5}, {"vcpus": None}, {"vcpus": True},
    {"mem_mib": 63}, {"mem_mib": 65537}, {"disk_mib": 63}, {"disk_mib": 1048577},
    {"timeout": 0}, {"timeout": 86401}, {"timeout": -1},
    {"sandbox_timeout": 0}, {"sandbox_timeout": -2}, {"sandbox_timeout": 604801},
    {"image": 5}, {"env": {"A": 1}}, {"env": ["A=1"]}, {"env": {"A=B": "x"}}, {"metadata": "x"},
    {"isolation": "docker"}, {"network_profile": "open"}, {"auto_resume": "yes"},
    {"surprise": 1}, {"Image": TEST_IMAGE},
], ids=lambda f: "-".join("%s=%r" % kv for kv in f.items()))
def test_create_with_wrong_types_out_of_range_or_unknown_fields_is_400(daemon, fields):
    body = dict(fields)
    if "image" not in body:
        body["image"] = TEST_IMAGE
    status, resp, _ = daemon.request("POST", "/v1/sandboxes", body)
    if status == 201:
        destroy_sandbox(daemon, resp["id"])
    assert_error(status, resp, 400, "bad_request")


@pytest.mark.parametrize("raw", ["{", "[]", "null", '"x"', "", "{\"image\": \"busybox:latest\",}"])
def test_create_with_malformed_json_is_400(daemon, raw):
    status, resp, _ = daemon.request("POST", "/v1/sandboxes", raw, headers={"Content-Type": "application/json"})
    if status == 201:
        destroy_sandbox(daemon, resp["id"])
        if raw == "":  # an empty body may mean "all defaults"
            return
    assert_error(status, resp, 400, "bad_request")


def test_vcpus_in_range_but_more_than_the_node_has_is_503(daemon):
    status, body, _ = daemon.request("POST", "/v1/sandboxes", {"image": TEST_IMAGE, "vcpus": 64})
    assert_error(status, body, 503, "unavailable")
    assert "vcpus" in body["error"]["message"]
    status, body, _ = daemon.request("POST", "/v1/sandboxes", {"image": TEST_IMAGE, "mem_mib": 65536})
    assert_error(status, body, 503, "unavailable")


def test_microvm_isolation_is_503_naming_the_driver(daemon):
    status, body, _ = daemon.request("POST", "/v1/sandboxes", {"image": TEST_IMAGE, "isolation": "microvm"})
    assert_error(status, body, 503, "unavailable")
    assert "microvm" in body["error"]["message"]


@pytest.mark.parametrize("fields", [{}, {"command": ""}, {"command": 5}, {"command": ["ls"]},
                                    {"command": "id", "timeout": 0}, {"command": "id", "timeout": 86401},
                                    {"command": "id", "timeout": "5"}, {"command": "id", "env": {"A": 1}},
                                    {"command": "id", "cwd": 5}, {"command": "id", "stdin": 5},
                                    {"command": "id", "surprise": True}],
                         ids=lambda f: "-".join("%s=%r" % kv for kv in f.items()) or "empty")
def test_exec_with_bad_body_is_400(daemon, sb, fields):
    for path in ("/exec", "/exec/stream"):
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s%s" % (sb["id"], path), fields)
        assert_error(status, body, 400, "bad_request")


def test_the_daemon_survived_all_of_the_above(daemon, sb):
    assert daemon.request("GET", "/healthz", key=None)[0] == 200
    assert exec_(daemon, sb["id"], "echo fine")["stdout"] == "fine\n"
    assert daemon.proc.poll() is None
