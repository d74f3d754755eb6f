"""Sandbox.watch / AsyncSandbox.watch against a real daemon: change events, recursion, errors."""
import asyncio

import pytest

from warren import AsyncSandbox, Sandbox, WarrenError, WarrenTimeoutError


def _until(w, want, limit=10):
    seen = []
    for _ in range(limit):
        ev = w.next(timeout=10)
        seen.append((ev.event, ev.path))
        if (ev.event, ev.path) == want:
            return seen
    raise AssertionError("never saw %r in %r" % (want, seen))


def test_watch_reports_create_modify_delete_recursively(daemon):
    with Sandbox(sandbox_timeout=60) as sb:
        sb.exec("mkdir -p /tmp/w")
        with sb.watch("/tmp/w", recursive=True) as w:
            # A new subdirectory is watched from its create event on (what it holds by then is
            # announced as created); wait for it before changing what is inside.
            sb.exec("mkdir /tmp/w/d")
            _until(w, ("create", "/tmp/w/d"))
            sb.exec("echo x > /tmp/w/d/f && rm /tmp/w/d/f")
            seen = _until(w, ("delete", "/tmp/w/d/f"))
            assert ("create", "/tmp/w/d/f") in seen


def test_a_quiet_watch_times_out_and_a_missing_dir_is_refused(daemon):
    with Sandbox(sandbox_timeout=60) as sb:
        with sb.watch("/tmp") as w:
            with pytest.raises(WarrenTimeoutError):
                w.next(timeout=0.5)
        with pytest.raises(WarrenError) as e:
            sb.watch("/no/such/dir")
        assert e.value.code == 404


def test_async_watch_iterates_events(daemon):
    async def main():
        async with AsyncSandbox(sandbox_timeout=60) as sb:
            async with await sb.watch("/tmp") as w:
                await sb.exec("touch /tmp/a")
                async for ev in w:
                    if ev.path == "/tmp/a":
                        return ev.event
    assert asyncio.run(main()) == "create"
