"""Fork, hibernate/resume and named snapshots on the jail driver (API.md "Fork", "Hibernate /
resume", "Named snapshots") against a real daemon: state inherited and diverging, processes
surviving a hibernate (and a kill -9 of the daemon meanwhile), snapshots outliving their source,
tenancy, damaged snapshots and every bad input."""
import glob
import os
import re
import time

import pytest

from warren_harness import assert_error, create_sandbox, destroy_sandbox, exec_

DISK = 256  # MiB: a small disk keeps the sparse copies of these tests quick


def tenant_key(d, tenant):
    status, body, _ = d.request("POST", "/v1/admin/keys", body={"tenant": tenant})
    assert status == 201, body
    return body["key"]


def make(d, **kw):
    kw.setdefault("disk_mib", DISK)
    kw.setdefault("sandbox_timeout", -1)
    return create_sandbox(d, **kw)


def out(d, sid, cmd):
    r = exec_(d, sid, cmd)
    assert r["exit_code"] == 0, r
    return r["stdout"]


def test_info_says_what_the_jail_driver_keeps(daemon):
    status, info, _ = daemon.request("GET", "/v1/info")
    jail = info["drivers"]["jail"]
    assert jail["snapshots"] is True
    assert jail["fork_memory"] is False          # no CRIU: children start fresh processes
    assert jail["hibernate_memory"] is True      # the freezer keeps processes and memory
    assert jail["hibernate_frees_memory"] is False


def test_fork_children_inherit_files_and_diverge_and_outlive_the_parent(daemon):
    parent = make(daemon, env={"FROM": "parent"})
    out(daemon, parent["id"], "echo inherited > /root/state && mkdir -p /data && seq 1 1000 > /data/n")
    status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/fork" % parent["id"], {"count": 3})
    assert status == 201, body
    kids = body["sandboxes"]
    assert len(kids) == 3 and len({k["id"] for k in kids}) == 3
    for k in kids:
        assert k["state"] == "running" and k["parent_id"] == parent["id"] and k["id"] != parent["id"]
        assert k["disk_mib"] == DISK and k["image"] == parent["image"]
        assert out(daemon, k["id"], "cat /root/state") == "inherited\n"
        assert out(daemon, k["id"], "wc -l < /data/n").strip() == "1000"
        assert out(daemon, k["id"], "echo $FROM") == "parent\n"
    # independent: each writes its own, nobody sees the others'
    for i, k in enumerate(kids):
        out(daemon, k["id"], "echo child%d > /root/state" % i)
    out(daemon, parent["id"], "echo parent-later > /root/state")
    for i, k in enumerate(kids):
        assert out(daemon, k["id"], "cat /root/state") == "child%d\n" % i
    assert out(daemon, parent["id"], "cat /root/state") == "parent-later\n"
    # files created by the sandbox's users keep their owners inside the child
    out(daemon, parent["id"], "touch /root/owned && chown 1000:1000 /root/owned")
    status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/fork" % parent["id"], {})
    assert status == 201 and len(body["sandboxes"]) == 1, body
    one = body["sandboxes"][0]
    assert out(daemon, one["id"], "stat -c %u:%g /root/owned") == "1000:1000\n"
    assert out(daemon, one["id"], "stat -c %u /root/state") == "0\n"
    destroy_sandbox(daemon, parent["id"])
    for k in kids + [one]:
        assert out(daemon, k["id"], "cat /root/state").strip().startswith(("child", "parent"))
        destroy_sandbox(daemon, k["id"])
    # no temporary fork state is left behind
    assert not glob.glob(os.path.join(daemon.data_dir, "snapshots", ".fork-*"))


@pytest.mark.parametrize("count", [0, 65, -1, "2", 2.5, None])
def test_fork_count_out_of_range_or_of_the_wrong_type_is_400(daemon, count):
    sb = make(daemon)
    try:
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/fork" % sb["id"], {"count": count})
        assert_error(status, body, 400, "bad_request")
        status, body, _ = daemon.request("GET", "/v1/sandboxes")
        assert not [s for s in body["sandboxes"] if s["parent_id"] == sb["id"]]
    finally:
        destroy_sandbox(daemon, sb["id"])


def test_hibernate_keeps_processes_files_env_and_cwd_and_refuses_calls_meanwhile(daemon):
    sb = make(daemon, env={"KEEP": "me"})
    sid = sb["id"]
    try:
        out(daemon, sid, "mkdir -p /work && echo kept > /work/f")
        pid = out(daemon, sid, "setsid sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done' "
                               ">/dev/null 2>&1 & echo $!").strip()
        time.sleep(0.5)
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/hibernate" % sid)
        assert status == 200, body
        assert body["state"] == "hibernated" and body["id"] == sid
        status, got, _ = daemon.request("GET", "/v1/sandboxes/" + sid)
        assert got["state"] == "hibernated"
        # nothing runs while hibernated
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/exec" % sid, {"command": "true"})
        assert_error(status, body, 409, "conflict")
        status, body, _ = daemon.request("GET", "/v1/sandboxes/%s/files?path=/work/f" % sid)
        assert_error(status, body, 409, "conflict")
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/hibernate" % sid)
        assert_error(status, body, 409, "conflict")
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/fork" % sid, {"count": 1})
        assert_error(status, body, 409, "conflict")
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/resume" % sid)
        assert status == 200 and body["state"] == "running", body
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/resume" % sid)
        assert_error(status, body, 409, "conflict")
        # the same process, at the same PID, still counting
        assert out(daemon, sid, "kill -0 %s && echo alive" % pid) == "alive\n"
        a = int(out(daemon, sid, "cat /tmp/count"))
        time.sleep(0.4)
        assert int(out(daemon, sid, "cat /tmp/count")) > a
        assert out(daemon, sid, "cat /work/f; echo $KEEP") == "kept\nme\n"
    finally:
        destroy_sandbox(daemon, sid)


def test_a_hibernated_sandbox_survives_a_kill9_of_the_daemon_and_resumes(daemon):
    sb = make(daemon)
    sid = sb["id"]
    try:
        pid = out(daemon, sid, "setsid sleep 1000 >/dev/null 2>&1 & echo $!").strip()
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/hibernate" % sid)
        assert status == 200, body
        daemon.kill9()
        daemon.start()
        deadline = time.time() + 20
        while True:
            status, body, _ = daemon.request("GET", "/v1/sandboxes/" + sid)
            if status == 200 and body["state"] == "hibernated":
                break
            assert time.time() < deadline, body
            time.sleep(0.1)
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/resume" % sid)
        assert status == 200 and body["state"] == "running", body
        assert out(daemon, sid, "kill -0 %s && echo alive" % pid) == "alive\n"
    finally:
        destroy_sandbox(daemon, sid)


def test_a_hibernated_sandbox_can_be_destroyed(daemon):
    sb = make(daemon)
    status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/hibernate" % sb["id"])
    assert status == 200, body
    status, body, _ = daemon.request("DELETE", "/v1/sandboxes/" + sb["id"])
    assert status == 200 and body["uptime_ms"] > 0, body
    status, body, _ = daemon.request("GET", "/v1/sandboxes/" + sb["id"])
    assert_error(status, body, 404, "not_found")


def test_on_idle_hibernate_hibernates_instead_of_destroying(daemon):
    sb = create_sandbox(daemon, disk_mib=DISK, sandbox_timeout=1, on_idle="hibernate")
    try:
        # An API call is activity: look only every 4 s (idle 1 s + the 2 s idle check).
        deadline = time.time() + 24
        while True:
            time.sleep(4)
            status, body, _ = daemon.request("GET", "/v1/sandboxes/" + sb["id"])
            assert status == 200, body
            if body["state"] == "hibernated":
                break
            assert time.time() < deadline, body
        status, body, _ = daemon.request("POST", "/v1/sandboxes/%s/resume" % sb["id"])
        assert status == 200, body
    finally:
        destroy_sandbox(daemon, sb["id"])
    status, body, _ = daemon.request("POST", "/v1/sandboxes", {"on_idle": "sleep"})
    assert_error(status, body, 400, "bad_request")


def test_checkpoint_outlives_its_source_restores_twice_and_is_deleted(daemon):
    src = make(daemon, env={"E": "1"}, metadata={"who": "src"})
    out(daemon, src["id"], "echo at-checkpoint > /root/s")
    status, snap, _ = daemon.request("POST", "/v1/sandboxes/%s/checkpoints" % src["id"], {"name": "before"})
    assert status == 201, snap
    assert re.fullmatch(r"snap_[0-9a-f]{16}", snap["snapshot_id"])
    assert snap["sandbox_id"] == src["id"] and snap["name"] == "before" and snap["size_bytes"] > 0
    sid = snap["snapshot_id"]
    # the source keeps running and changes afterwards do not reach the snapshot
    out(daemon, src["id"], "echo later > /root/s")
    destroy_sandbox(daemon, src["id"])
    status, body, _ = daemon.request("GET", "/v1/snapshots")
    assert sid in [s["snapshot_id"] for s in body["snapshots"]]
    status, body, _ = daemon.request("GET", "/v1/snapshots/" + sid)
    assert status == 200 and body == snap, body
    made = []
    for i in range(2):
        status, sb, _ = daemon.request("POST", "/v1/snapshots/%s/restore" % sid,
                                       {"sandbox_timeout": 600, "metadata": {"n": i}})
        assert status == 201, sb
        made.append(sb)
        assert sb["parent_id"] == src["id"] and sb["state"] == "running" and sb["id"] != src["id"]
        assert sb["sandbox_timeout"] == 600 and sb["metadata"] == {"n": i}
        assert out(daemon, sb["id"], "cat /root/s; echo $E") == "at-checkpoint\n1\n"
    out(daemon, made[0]["id"], "echo zero > /root/s")
    assert out(daemon, made[1]["id"], "cat /root/s") == "at-checkpoint\n"
    for sb in made:
        destroy_sandbox(daemon, sb["id"])
    snap_dir = os.path.join(daemon.data_dir, "snapshots", sid)
    assert os.path.isdir(snap_dir)
    status, body, _ = daemon.request("DELETE", "/v1/snapshots/" + sid)
    assert status == 204, body
    assert not os.path.exists(snap_dir)
    status, body, _ = daemon.request("DELETE", "/v1/snapshots/" + sid)
    assert_error(status, body, 404, "not_found")
    status, body, _ = daemon.request("POST", "/v1/snapshots/%s/restore" % sid)
    assert_error(status, body, 404, "not_found")


def test_snapshots_survive_a_daemon_restart(daemon):
    src = make(daemon)
    out(daemon, src["id"], "echo durable > /root/d")
    status, snap, _ = daemon.request("POST", "/v1/sandboxes/%s/checkpoints" % src["id"], {})
    assert status == 201, snap
    destroy_sandbox(daemon, src["id"])
    daemon.kill9()
    daemon.start()
    status, sb, _ = daemon.request("POST", "/v1/snapshots/%s/restore" % snap["snapshot_id"])
    assert status == 201, sb
    assert out(daemon, sb["id"], "cat /root/d") == "durable\n"
    destroy_sandbox(daemon, sb["id"])
    assert daemon.request("DELETE", "/v1/snapshots/" + snap["snapshot_id"])[0] == 204


def test_another_tenant_sees_no_snapshot_and_cannot_fork(daemon):
    a, b = tenant_key(daemon, "snapa"), tenant_key(daemon, "snapb")
    src = make(daemon, key=a)
    try:
        status, snap, _ = daemon.request("POST", "/v1/sandboxes/%s/checkpoints" % src["id"], {}, key=a)
        assert status == 201, snap
        sid = snap["snapshot_id"]
        for method, path in [("GET", "/v1/snapshots/" + sid), ("DELETE", "/v1/snapshots/" + sid),
                             ("POST", "/v1/snapshots/%s/restore" % sid),
                             ("POST", "/v1/sandboxes/%s/fork" % src["id"]),
                             ("POST", "/v1/sandboxes/%s/hibernate" % src["id"]),
                             ("POST", "/v1/sandboxes/%s/checkpoints" % src["id"])]:
            status, body, _ = daemon.request(method, path, {} if method == "POST" else None, key=b)
            assert_error(status, body, 404, "not_found")
        status, body, _ = daemon.request("GET", "/v1/snapshots", key=b)
        assert status == 200 and body["snapshots"] == []
        status, body, _ = daemon.request("GET", "/v1/snapshots", key=a)
        assert [s["snapshot_id"] for s in body["snapshots"]] == [sid]
        assert daemon.request("DELETE", "/v1/snapshots/" + sid, key=a)[0] == 204
    finally:
        destroy_sandbox(daemon, src["id"], key=a)


def test_a_damaged_snapshot_is_refused_and_nothing_else_is_lost(daemon):
    src = make(daemon)
    try:
        out(daemon, src["id"], "echo x > /root/x")
        status, snap, _ = daemon.request("POST", "/v1/sandboxes/%s/checkpoints" % src["id"], {})
        assert status == 201, snap
        img = os.path.join(daemon.data_dir, "snapshots", snap["snapshot_id"], "scratch.img")
        with open(img, "r+b") as f:
            f.truncate(4096)
        status, body, _ = daemon.request("POST", "/v1/snapshots/%s/restore" % snap["snapshot_id"])
        assert status in (400, 409, 500), body
        assert "snapshot" in body["error"]["message"]
        status, body, _ = daemon.request("GET", "/v1/sandboxes")
        assert [s["id"] for s in body["sandboxes"]] == [src["id"]]  # no half sandbox
        assert out(daemon, src["id"], "cat /root/x") == "x\n"
        assert daemon.request("DELETE", "/v1/snapshots/" + snap["snapshot_id"])[0] == 204
    finally:
        destroy_sandbox(daemon, src["id"])


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/v1/sandboxes/{id}/checkpoints", {"name": 5}),
    ("POST", "/v1/sandboxes/{id}/checkpoints", {"label": "x"}),
    ("POST", "/v1/sandboxes/{id}/hibernate", {"now": True}),
    ("POST", "/v1/snapshots/snap_0000000000000000/restore", {"sandbox_timeout": 0}),
])
def test_bad_snapshot_bodies_are_400(daemon, method, path, body):
    sb = make(daemon)
    try:
        status, resp, _ = daemon.request(method, path.format(id=sb["id"]), body)
        assert_error(status, resp, 400, "bad_request")
    finally:
        destroy_sandbox(daemon, sb["id"])


def test_unknown_and_malformed_ids_are_404(daemon):
    for method, path in [("GET", "/v1/snapshots/snap_0123456789abcdef"), ("GET", "/v1/snapshots/nope"),
                         ("DELETE", "/v1/snapshots/../etc"), ("POST", "/v1/snapshots/snap_0123456789abcdef/restore"),
                         ("POST", "/v1/sandboxes/0123456789abcdef/fork"),
                         ("POST", "/v1/sandboxes/0123456789abcdef/resume")]:
        status, body, _ = daemon.request(method, path, {} if method == "POST" else None)
        assert_error(status, body, 404, "not_found")


def test_sigterm_with_snapshots_and_a_hibernated_sandbox_exits_zero_and_keeps_both(daemon):
    src = make(daemon)
    status, snap, _ = daemon.request("POST", "/v1/sandboxes/%s/checkpoints" % src["id"], {})
    assert status == 201, snap
    assert daemon.request("POST", "/v1/sandboxes/%s/hibernate" % src["id"])[0] == 200
    t0 = time.time()
    assert daemon.stop() == 0
    assert time.time() - t0 < 10
    daemon.start()
    status, body, _ = daemon.request("GET", "/v1/snapshots/" + snap["snapshot_id"])
    assert status == 200, body
    deadline = time.time() + 20
    while daemon.request("GET", "/v1/sandboxes/" + src["id"])[1]["state"] != "hibernated":
        assert time.time() < deadline
        time.sleep(0.1)
    assert daemon.request("POST", "/v1/sandboxes/%s/resume" % src["id"])[0] == 200
    assert daemon.request("DELETE", "/v1/snapshots/" + snap["snapshot_id"])[0] == 204
    destroy_sandbox(daemon, src["id"])
