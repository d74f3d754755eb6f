"""AsyncSandbox: the asyncio SDK, mirroring Sandbox method for method with awaitables.
`async with AsyncSandbox(...) as sb: out = await sb.exec("uname -a")`."""
from __future__ import annotations

from typing import Any, BinaryIO, Callable, Dict, List, Optional, Union

from . import _calls
from ._aio_http import AsyncHttpTransport
from ._base import SandboxBase, file_size
from ._sse import ExecStreamState
from .errors import WarrenError
from .models import DestroyStats, ExecResult, Exposure, FileEntry, SandboxInfo, SnapshotInfo
from .watch import AsyncWatch
from .shell import AsyncShell

OutputCallback = Optional[Callable[[str], Any]]


class AsyncSandbox(SandboxBase):
    """A Warren sandbox driven with asyncio. Same constructor as Sandbox."""

    def __init__(self, image: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(image, **kwargs)
        self._t = AsyncHttpTransport(self.api_url, self.api_key, self.verify_tls)

    # -- lifecycle -----------------------------------------------------------------------------
    async def create(self) -> SandboxInfo:
        """Creates the sandbox; returns when it is running."""
        if self.info is not None:
            raise WarrenError("sandbox %s already exists" % self.info.id)
        self.info = await self._t.call(_calls.create(self._spec))
        return self.info

    @classmethod
    async def connect(cls, sandbox_id: str, **kwargs: Any) -> "AsyncSandbox":
        """Attaches to an existing sandbox."""
        sb = cls(**kwargs)
        sb.info = await sb._t.call(_calls.get(sandbox_id))
        return sb

    @classmethod
    async def list(cls, api_url: Optional[str] = None, api_key: Optional[str] = None) -> List[SandboxInfo]:
        """Every sandbox this key can see."""
        t = cls(api_url=api_url, api_key=api_key)._t
        try:
            return await t.call(_calls.list_sandboxes())
        finally:
            await t.close()

    async def refresh(self) -> SandboxInfo:
        self.info = await self._t.call(_calls.get(self.id))
        return self.info

    async def destroy(self) -> DestroyStats:
        """Destroys the sandbox; returns what it used."""
        stats = await self._t.call(_calls.destroy(self.id))
        await self._t.close()
        return stats

    # -- fork, hibernate, snapshots -----------------------------------------------------------
    def _adopt(self, info: SandboxInfo) -> "AsyncSandbox":
        sb = type(self)(api_url=self.api_url, api_key=self.api_key, verify_tls=self.verify_tls)
        sb.info = info
        return sb

    async def fork(self, count: int = 1) -> List["AsyncSandbox"]:
        """See Sandbox.fork."""
        return [self._adopt(i) for i in await self._t.call(_calls.fork(self.id, count))]

    async def set_network(self, network_profile: Optional[str] = None, allow: Optional[list] = None,
                          deny: Optional[list] = None) -> SandboxInfo:
        self.info = await self._t.call(_calls.set_network(self.id, network_profile, allow, deny))
        return self.info

    async def hibernate(self) -> SandboxInfo:
        self.info = await self._t.call(_calls.hibernate(self.id))
        return self.info

    async def resume(self) -> SandboxInfo:
        self.info = await self._t.call(_calls.resume(self.id))
        return self.info

    async def checkpoint(self, name: Optional[str] = None) -> str:
        return (await self._t.call(_calls.checkpoint(self.id, name))).snapshot_id

    @classmethod
    async def restore(cls, snapshot_id: str, *, sandbox_timeout: Optional[int] = None,
                      metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> "AsyncSandbox":
        sb = cls(**kwargs)
        sb.info = await sb._t.call(_calls.restore(snapshot_id, sandbox_timeout, metadata))
        return sb

    @classmethod
    async def snapshots(cls, api_url: Optional[str] = None, api_key: Optional[str] = None) -> List[SnapshotInfo]:
        t = cls(api_url=api_url, api_key=api_key)._t
        try:
            return await t.call(_calls.list_snapshots())
        finally:
            await t.close()

    @classmethod
    async def delete_snapshot(cls, snapshot_id: str, api_url: Optional[str] = None,
                              api_key: Optional[str] = None) -> None:
        t = cls(api_url=api_url, api_key=api_key)._t
        try:
            await t.call(_calls.delete_snapshot(snapshot_id))
        finally:
            await t.close()

    async def close(self) -> None:
        """Closes pooled connections without destroying the sandbox."""
        await self._t.close()

    async def __aenter__(self) -> "AsyncSandbox":
        if self.info is None:
            await self.create()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.info is not None:
            try:
                await self.destroy()
            except WarrenError as e:
                if e.code != 404:
                    raise

    # -- commands ------------------------------------------------------------------------------
    async def exec(self, command: str, *, timeout: Optional[float] = None,
                   env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                   stdin: Optional[str] = None) -> ExecResult:
        """See Sandbox.exec."""
        body = _calls.exec_body(command, timeout, env, cwd, stdin)
        return await self._t.call(_calls.exec_(self.id, body, self._exec_wait(timeout)))

    async def exec_stream(self, command: str, on_stdout: OutputCallback = None,
                          on_stderr: OutputCallback = None, timeout: Optional[float] = None, *,
                          env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                          stdin: Optional[str] = None) -> ExecResult:
        """See Sandbox.exec_stream; the callbacks are plain functions called on the loop."""
        body = _calls.exec_body(command, timeout, env, cwd, stdin)
        state = ExecStreamState(on_stdout, on_stderr)
        async with self._t.open(_calls.exec_stream(self.id, body, self._exec_wait(timeout))) as resp:
            while True:
                chunk = await resp.read_some()
                if not chunk or state.feed(chunk):
                    break
            if state.result is not None:
                await resp.read_all()
        return state.finish()

    # -- files ---------------------------------------------------------------------------------
    async def upload_file(self, local_path: str, remote_path: str, mode: Optional[int] = None) -> int:
        """See Sandbox.upload_file. Copies a local file into the sandbox (streamed, never held in memory); parents are
        created. Returns the size written."""
        with open(local_path, "rb") as f:
            return await self._t.call(_calls.put_file(self.id, remote_path, f, file_size(f), mode))

    async def write(self, remote_path: str, data: Union[bytes, BinaryIO], mode: Optional[int] = None) -> int:
        """Writes bytes (or a binary file object, streamed) to `remote_path`."""
        if isinstance(data, bytearray):
            data = bytes(data)
        size = len(data) if isinstance(data, bytes) else file_size(data)
        return await self._t.call(_calls.put_file(self.id, remote_path, data, size, mode))

    async def write_text(self, remote_path: str, text: str, encoding: str = "utf-8") -> int:
        """Writes a string to `remote_path`."""
        return await self.write(remote_path, text.encode(encoding))

    async def download(self, remote_path: str) -> bytes:
        """A file's content (missing → 404 WarrenError, a directory → 400)."""
        return await self._t.call(_calls.get_file(self.id, remote_path))

    async def read_text(self, remote_path: str, encoding: str = "utf-8") -> str:
        return (await self.download(remote_path)).decode(encoding)

    async def download_file(self, remote_path: str, local_path: str) -> int:
        """Streams a file out of the sandbox into `local_path`; returns its size."""
        with open(local_path, "wb") as f:
            await self._t.call(_calls.get_file(self.id, remote_path, sink=f))
            return f.tell()

    async def ls(self, path: str) -> List[FileEntry]:
        """The entries of a directory."""
        return await self._t.call(_calls.ls(self.id, path))

    async def remove(self, path: str, recursive: bool = False) -> None:
        """Deletes a file, or a directory (non-empty ones need recursive=True)."""
        await self._t.call(_calls.delete_file(self.id, path, recursive))

    # -- public URLs ---------------------------------------------------------------------------
    async def url(self, port: int) -> str:
        """The public URL of `port` in the sandbox (anonymous unless the port is exposed with
        auth): `http://run<id>.<domain>/sb/p/<port>/`."""
        return await self._t.call(_calls.url(self.id, port))

    async def expose(self, port: int, auth: bool = True) -> Exposure:
        """Exposes `port`; with auth the proxy demands `Authorization: Bearer <token>` or the
        cookie that `.browser_url` sets. Exposing again mints a new token."""
        return await self._t.call(_calls.expose(self.id, port, auth))

    async def exposures(self) -> List[Exposure]:
        """The ports exposed with expose() (tokens are not shown again)."""
        return await self._t.call(_calls.exposures(self.id))

    async def unexpose(self, port: int) -> None:
        """Deletes an exposure: the port is public and anonymous again."""
        await self._t.call(_calls.unexpose(self.id, port))

    async def shell(self) -> AsyncShell:
        """Opens a persistent bash session: `async with await sb.shell() as sh:`."""
        return await AsyncShell(self.api_url, self.api_key, self.id, self.verify_tls).open()

    async def watch(self, path: str, recursive: bool = False) -> AsyncWatch:
        """Watches a directory: `async with await sb.watch("/work") as w: async for ev in w:`."""
        return await AsyncWatch(self.api_url, self.api_key, self.id, path, recursive, self.verify_tls).open()
