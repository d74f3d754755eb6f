"""Fork, hibernate/resume and snapshots through the SDK, blocking and asyncio, against a real
daemon (the API's behaviour is tested in tests/integration/test_snapshots.py)."""
import asyncio

import pytest

from warren import AsyncSandbox, Sandbox, SnapshotInfo, WarrenError


def test_fork_hibernate_resume_checkpoint_restore_blocking():
    with Sandbox(disk_mib=256, sandbox_timeout=-1) as sb:
        sb.exec("echo hi > /root/f")
        kids = sb.fork(2)
        try:
            assert len(kids) == 2 and all(isinstance(k, Sandbox) for k in kids)
            assert all(k.info.parent_id == sb.id for k in kids)
            assert kids[0].exec("cat /root/f").stdout == "hi\n"
        finally:
            for k in kids:
                k.destroy()
        assert sb.hibernate().state == "hibernated"
        with pytest.raises(WarrenError) as ei:
            sb.exec("true")
        assert ei.value.code == 409
        assert sb.resume().state == "running"
        snap = sb.checkpoint("sdk")
        assert snap.startswith("snap_")
        assert snap in [s.snapshot_id for s in Sandbox.snapshots()]
        assert all(isinstance(s, SnapshotInfo) for s in Sandbox.snapshots())
        with Sandbox.restore(snap, metadata={"from": "sdk"}) as r:
            assert r.info.parent_id == sb.id and r.info.metadata == {"from": "sdk"}
            assert r.exec("cat /root/f").stdout == "hi\n"
        Sandbox.delete_snapshot(snap)
        assert snap not in [s.snapshot_id for s in Sandbox.snapshots()]
    with pytest.raises(WarrenError) as ei:
        Sandbox.restore(snap)
    assert ei.value.code == 404


def test_fork_and_snapshots_asyncio():
    async def go():
        sb = AsyncSandbox(disk_mib=256, sandbox_timeout=-1)
        await sb.create()
        try:
            await sb.exec("echo async > /root/a")
            [kid] = await sb.fork(1)
            assert (await kid.exec("cat /root/a")).stdout == "async\n"
            await kid.destroy()
            assert (await sb.hibernate()).state == "hibernated"
            assert (await sb.resume()).state == "running"
            snap = await sb.checkpoint()
            r = await AsyncSandbox.restore(snap)
            assert (await r.exec("cat /root/a")).stdout == "async\n"
            await r.destroy()
            assert snap in [s.snapshot_id for s in await AsyncSandbox.snapshots()]
            await AsyncSandbox.delete_snapshot(snap)
        finally:
            await sb.destroy()
    asyncio.run(go())
