"""AsyncSandbox mirrors Sandbox: the same calls, awaited, over asyncio streams."""
import asyncio
import time

import pytest

from warren import AsyncSandbox, ExecResult, WarrenError, WarrenTimeoutError


def run(coro):
    return asyncio.run(coro)


def test_async_with_creates_execs_and_destroys(daemon):
    async def main():
        async with AsyncSandbox(sandbox_timeout=60) as sb:
            out = await sb.exec("echo hi; echo e >&2; exit 2")
            assert (out.stdout, out.stderr, out.exit_code) == ("hi\n", "e\n", 2)
            assert sb.id in [s.id for s in await AsyncSandbox.list()]
            return sb.id
    sid = run(main())
    assert daemon.request("GET", "/v1/sandboxes/" + sid)[0] == 404


def test_async_create_and_destroy_return_info_and_stats(daemon):
    async def main():
        sb = AsyncSandbox(sandbox_timeout=60)
        info = await sb.create()
        stats = await sb.destroy()
        assert info.state == "running" and stats.uptime_ms > 0
        with pytest.raises(WarrenError) as e:
            await sb.destroy()
        assert (e.value.code, e.value.error_code) == (404, "not_found")
    run(main())


def test_async_execs_run_concurrently(daemon):
    async def main():
        async with AsyncSandbox(sandbox_timeout=60) as sb:
            t0 = time.time()
            outs = await asyncio.gather(*[sb.exec("sleep 0.3; echo %d" % i) for i in range(5)])
            assert [o.stdout for o in outs] == ["%d\n" % i for i in range(5)]
            assert time.time() - t0 < 1.2
            for i in range(10):  # and sequential calls reuse pooled connections
                await sb.exec("true")
            assert 1 <= len(sb._t._idle) <= 5
    run(main())


def test_async_exec_stream_delivers_chunks_as_they_appear(daemon):
    async def main():
        async with AsyncSandbox(sandbox_timeout=60) as sb:
            seen = []
            t0 = time.time()
            out = await sb.exec_stream("echo a; sleep 1; echo b >&2",
                                       on_stdout=lambda c: seen.append((c, time.time() - t0)),
                                       on_stderr=lambda c: seen.append((c, time.time() - t0)))
            assert isinstance(out, ExecResult)
            assert [c for c, _ in seen] == ["a\n", "b\n"] and seen[0][1] < 0.9
            assert (out.stdout, out.stderr, out.exit_code) == ("a\n", "b\n", 0)
            big = await sb.exec_stream("seq 1 100000")
            assert big.stdout.count("\n") == 100000
            assert (await sb.exec("echo after")).stdout == "after\n"
    run(main())


def test_async_timeouts_raise_with_partial_output(daemon):
    async def main():
        async with AsyncSandbox(sandbox_timeout=60) as sb:
            with pytest.raises(WarrenTimeoutError) as e:
                await sb.exec("echo p; sleep 30", timeout=1)
            assert e.value.stdout == "p\n" and e.value.code == 504
            with pytest.raises(WarrenTimeoutError) as e:
                await sb.exec_stream("echo q; sleep 30", timeout=1)
            assert e.value.stdout == "q\n"
    run(main())


def test_async_errors_carry_the_api_code(daemon):
    async def main():
        with pytest.raises(WarrenError) as e:
            await AsyncSandbox(mem_mib=1).create()
        assert (e.value.code, e.value.error_code) == (400, "bad_request")
        with pytest.raises(WarrenError) as e:
            await AsyncSandbox.connect("0123456789abcdef")
        assert e.value.code == 404
    run(main())
