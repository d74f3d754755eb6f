"""Sandbox: the blocking SDK. One object per sandbox; `with Sandbox(...) as sb:` creates it on
enter and destroys it on exit."""
from __future__ import annotations

from typing import Any, BinaryIO, Callable, Dict, List, Optional, Union

from . import _calls
from ._base import SandboxBase, file_size
from ._http import HttpTransport, read_some
from ._sse import ExecStreamState
from .config import resolve_api_key, resolve_api_url
from .errors import WarrenError
from .models import ApiKey, DestroyStats, ExecResult, Exposure, FileEntry, SandboxInfo, SnapshotInfo
from .watch import Watch
from .shell import Shell

OutputCallback = Optional[Callable[[str], Any]]


class Sandbox(SandboxBase):
    """A Warren sandbox, driven over the HTTP API (blocking calls). See SandboxBase for the
    constructor's arguments."""

    def __init__(self, image: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(image, **kwargs)
        self._t = HttpTransport(self.api_url, self.api_key, self.verify_tls)

    # -- lifecycle -----------------------------------------------------------------------------
    def create(self) -> SandboxInfo:
        """Creates the sandbox; returns when it is running."""
        if self.info is not None:
            raise WarrenError("sandbox %s already exists" % self.info.id)
        self.info = self._t.call(_calls.create(self._spec))
        return self.info

    @classmethod
    def connect(cls, sandbox_id: str, **kwargs: Any) -> "Sandbox":
        """Attaches to an existing sandbox (api_url/api_key as in the constructor)."""
        sb = cls(**kwargs)
        sb.info = sb._t.call(_calls.get(sandbox_id))
        return sb

    @classmethod
    def list(cls, api_url: Optional[str] = None, api_key: Optional[str] = None) -> List[SandboxInfo]:
        """Every sandbox this key can see."""
        return cls(api_url=api_url, api_key=api_key)._t.call(_calls.list_sandboxes())

    def refresh(self) -> SandboxInfo:
        """Reads the sandbox's current state from the server."""
        self.info = self._t.call(_calls.get(self.id))
        return self.info

    def destroy(self) -> DestroyStats:
        """Destroys the sandbox; returns what it used (CPU, peak memory, disk, uptime)."""
        stats = self._t.call(_calls.destroy(self.id))
        self._t.close()
        return stats

    # -- fork, hibernate, snapshots -----------------------------------------------------------
    def _adopt(self, info: SandboxInfo) -> "Sandbox":
        sb = type(self)(api_url=self.api_url, api_key=self.api_key, verify_tls=self.verify_tls)
        sb.info = info
        return sb

    def fork(self, count: int = 1) -> List["Sandbox"]:
        """Clones the running sandbox into `count` (1..64) independent children; the parent
        keeps running. Children inherit its files (and, where /v1/info says fork_memory, its
        memory and processes)."""
        return [self._adopt(i) for i in self._t.call(_calls.fork(self.id, count))]

    def set_network(self, network_profile: Optional[str] = None, allow: Optional[list] = None,
                    deny: Optional[list] = None) -> SandboxInfo:
        """Changes the egress policy of the running sandbox (what is not given stays); in force
        for new connections when this returns."""
        self.info = self._t.call(_calls.set_network(self.id, network_profile, allow, deny))
        return self.info

    def hibernate(self) -> SandboxInfo:
        """Freezes the sandbox where it stands (same id; exec and files answer 409 until resume)."""
        self.info = self._t.call(_calls.hibernate(self.id))
        return self.info

    def resume(self) -> SandboxInfo:
        """Lets a hibernated sandbox go on: files, env, processes at their PIDs."""
        self.info = self._t.call(_calls.resume(self.id))
        return self.info

    def checkpoint(self, name: Optional[str] = None) -> str:
        """Saves a named snapshot of the running sandbox (which keeps running); returns its id."""
        return self._t.call(_calls.checkpoint(self.id, name)).snapshot_id

    @classmethod
    def restore(cls, snapshot_id: str, *, sandbox_timeout: Optional[int] = None,
                metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> "Sandbox":
        """A new sandbox from a snapshot (parent_id = the snapshot's source); api_url/api_key as
        in the constructor."""
        sb = cls(**kwargs)
        sb.info = sb._t.call(_calls.restore(snapshot_id, sandbox_timeout, metadata))
        return sb

    @classmethod
    def snapshots(cls, api_url: Optional[str] = None, api_key: Optional[str] = None) -> List[SnapshotInfo]:
        """Every snapshot this key can see."""
        return cls(api_url=api_url, api_key=api_key)._t.call(_calls.list_snapshots())

    @classmethod
    def delete_snapshot(cls, snapshot_id: str, api_url: Optional[str] = None, api_key: Optional[str] = None) -> None:
        """Deletes a snapshot and frees its disk."""
        cls(api_url=api_url, api_key=api_key)._t.call(_calls.delete_snapshot(snapshot_id))

    def __enter__(self) -> "Sandbox":
        if self.info is None:
            self.create()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.info is not None:
            try:
                self.destroy()
            except WarrenError as e:
                if e.code != 404:
                    raise

    # -- commands ------------------------------------------------------------------------------
    def exec(self, command: str, *, timeout: Optional[float] = None,
             env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
             stdin: Optional[str] = None) -> ExecResult:
        """Runs `command` under /bin/sh -c and waits for it. A non-zero exit is not an error
        (look at .exit_code / .ok); past `timeout` seconds (default: the sandbox's) the process
        group is killed and WarrenTimeoutError carries the partial .stdout/.stderr."""
        body = _calls.exec_body(command, timeout, env, cwd, stdin)
        return self._t.call(_calls.exec_(self.id, body, self._exec_wait(timeout)))

    def exec_stream(self, command: str, on_stdout: OutputCallback = None,
                    on_stderr: OutputCallback = None, timeout: Optional[float] = None, *,
                    env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                    stdin: Optional[str] = None) -> ExecResult:
        """Runs `command`, calling on_stdout/on_stderr with each chunk of text as soon as the
        sandbox prints it; returns the ExecResult (with the whole output) once it exits."""
        body = _calls.exec_body(command, timeout, env, cwd, stdin)
        state = ExecStreamState(on_stdout, on_stderr)
        with self._t.open(_calls.exec_stream(self.id, body, self._exec_wait(timeout))) as resp:
            while True:
                chunk = read_some(resp, self.api_url)
                if not chunk or state.feed(chunk):
                    break
            if state.result is not None:
                resp.read()  # drain to the end so the connection can be reused
        return state.finish()

    # -- files ---------------------------------------------------------------------------------
    def upload_file(self, local_path: str, remote_path: str, mode: Optional[int] = None) -> int:
        """Copies a local file into the sandbox (streamed, never held in memory); parents are
        created. Returns the size written."""
        with open(local_path, "rb") as f:
            return self._t.call(_calls.put_file(self.id, remote_path, f, file_size(f), mode))

    def write(self, remote_path: str, data: Union[bytes, BinaryIO], mode: Optional[int] = None) -> int:
        """Writes bytes (or a binary file object, streamed) to `remote_path`."""
        if isinstance(data, bytearray):
            data = bytes(data)
        size = len(data) if isinstance(data, bytes) else file_size(data)
        return self._t.call(_calls.put_file(self.id, remote_path, data, size, mode))

    def write_text(self, remote_path: str, text: str, encoding: str = "utf-8") -> int:
        """Writes a string to `remote_path`."""
        return self.write(remote_path, text.encode(encoding))

    def download(self, remote_path: str) -> bytes:
        """A file's content (missing → 404 WarrenError, a directory → 400)."""
        return self._t.call(_calls.get_file(self.id, remote_path))

    def read_text(self, remote_path: str, encoding: str = "utf-8") -> str:
        return self.download(remote_path).decode(encoding)

    def download_file(self, remote_path: str, local_path: str) -> int:
        """Streams a file out of the sandbox into `local_path`; returns its size."""
        with open(local_path, "wb") as f:
            self._t.call(_calls.get_file(self.id, remote_path, sink=f))
            return f.tell()

    def ls(self, path: str) -> List[FileEntry]:
        """The entries of a directory."""
        return self._t.call(_calls.ls(self.id, path))

    def remove(self, path: str, recursive: bool = False) -> None:
        """Deletes a file, or a directory (non-empty ones need recursive=True)."""
        self._t.call(_calls.delete_file(self.id, path, recursive))

    # -- public URLs ---------------------------------------------------------------------------
    def url(self, port: int) -> str:
        """The public URL of `port` in the sandbox (anonymous unless the port is exposed with
        auth): `http://run<id>.<domain>/sb/p/<port>/`."""
        return self._t.call(_calls.url(self.id, port))

    def expose(self, port: int, auth: bool = True) -> Exposure:
        """Exposes `port`; with auth the proxy demands `Authorization: Bearer <token>` or the
        cookie that `.browser_url` sets. Exposing again mints a new token."""
        return self._t.call(_calls.expose(self.id, port, auth))

    def exposures(self) -> List[Exposure]:
        """The ports exposed with expose() (tokens are not shown again)."""
        return self._t.call(_calls.exposures(self.id))

    def unexpose(self, port: int) -> None:
        """Deletes an exposure: the port is public and anonymous again."""
        self._t.call(_calls.unexpose(self.id, port))

    def shell(self) -> Shell:
        """Opens a persistent bash session (needs the `websockets` package)."""
        return Shell(self.api_url, self.api_key, self.id, self.verify_tls)

    def watch(self, path: str, recursive: bool = False) -> Watch:
        """Watches a directory: `with sb.watch("/work", recursive=True) as w: w.next(timeout=5)`
        gives WatchEvent(event, path) per change (needs the `websockets` package)."""
        return Watch(self.api_url, self.api_key, self.id, path, recursive, self.verify_tls)


class Client:
    """Node-level calls that are not about one sandbox: info and (admin keys) API keys."""

    def __init__(self, api_url: Optional[str] = None, api_key: Optional[str] = None,
                 verify_tls: bool = True) -> None:
        self.api_url = resolve_api_url(api_url)
        self.api_key = resolve_api_key(api_key, self.api_url)
        self._t = HttpTransport(self.api_url, self.api_key, verify_tls)

    def info(self) -> Dict[str, Any]:
        """`GET /v1/info`: version, nodes, drivers and what they can do, images."""
        return self._t.call(_calls.info())

    def sandboxes(self) -> List[SandboxInfo]:
        return self._t.call(_calls.list_sandboxes())

    def create_key(self, tenant: str, admin: bool = False) -> ApiKey:
        """Mints an API key for `tenant` (admin key needed); `.key` is shown only here."""
        return self._t.call(_calls.create_key(tenant, admin))

    def revoke_key(self, key_id: str) -> None:
        """Revokes a key by its key_id (admin key needed)."""
        self._t.call(_calls.revoke_key(key_id))
