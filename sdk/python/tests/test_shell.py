"""Shell sessions through the SDK: state persists across run(), exit closes the session, timeouts
kill the command but not the shell; the async face mirrors the blocking one."""
import asyncio

import pytest

pytest.importorskip("websockets")

from warren import AsyncSandbox, ExecResult, Sandbox, WarrenError, WarrenTimeoutError  # noqa: E402
from warren_harness import shared_images  # noqa: E402

SHELL_IMAGE = "debian:bookworm"  # the shell session is a bash; busybox has none


@pytest.fixture(scope="module")
def sb(daemon):
    shared_images((SHELL_IMAGE,))  # the daemon's image dir is this cache: it sees it at once
    with Sandbox(SHELL_IMAGE, sandbox_timeout=120) as s:
        yield s


def test_a_sandbox_without_bash_refuses_the_shell_with_503(daemon):
    # The sandbox exists; its image lacks bash: a missing feature (503), not a missing sandbox.
    with Sandbox(sandbox_timeout=60) as busybox:
        with pytest.raises(WarrenError) as e:
            busybox.shell()
        assert e.value.code == 503


def test_state_persists_between_runs(sb):
    with sb.shell() as sh:
        first = sh.run("cd /tmp && export FOO=bar")
        assert isinstance(first, ExecResult) and first.exit_code == 0
        assert sh.run("echo $FOO").stdout == "bar\n"
        assert sh.run("pwd").stdout == "/tmp\n"
        out = sh.run("echo e >&2; false")
        assert (out.stderr, out.exit_code, out.ok) == ("e\n", 1, False)


def test_exit_closes_the_shell_and_later_runs_raise_shell_is_closed(sb):
    sh = sb.shell()
    out = sh.run("exit 42")
    assert out.exit_code == 42 and sh.closed
    with pytest.raises(WarrenError) as e:
        sh.run("echo hi")
    assert str(e.value) == "Shell is closed"
    sh.close()
    with pytest.raises(WarrenError, match="Shell is closed"):
        sh.run("echo hi")


def test_a_timeout_kills_the_command_not_the_shell(sb):
    with sb.shell() as sh:
        sh.run("export KEEP=1")
        with pytest.raises(WarrenTimeoutError) as e:
            sh.run("echo partial; sleep 30", timeout=1)
        assert e.value.stdout == "partial\n"
        assert sh.run("echo $KEEP").stdout == "1\n"


def test_async_shell(daemon):
    async def main():
        async with AsyncSandbox(SHELL_IMAGE, sandbox_timeout=60) as sb:
            async with await sb.shell() as sh:
                await sh.run("cd /etc")
                assert (await sh.run("pwd")).stdout == "/etc\n"
                await sh.run("exit 3")
                with pytest.raises(WarrenError, match="Shell is closed"):
                    await sh.run("pwd")
    asyncio.run(main())
