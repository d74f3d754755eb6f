"""Shell sessions: one long-lived bash per WebSocket (`/v1/sandboxes/{id}/shell`), so `cd`,
exported variables and functions persist between run() calls. Uses the `websockets` package;
the blocking Shell drives the asyncio one on a private event-loop thread."""
from __future__ import annotations

import asyncio
import inspect
import json
import ssl
from typing import Any, Dict, Optional

from . import _calls
from ._loop import BlockingSession
from .errors import WarrenConnectionError, WarrenError, WarrenTimeoutError
from .models import ExecResult

MISSING_WEBSOCKETS = ("shell sessions need the 'websockets' package: "
                      "apt install python3-websockets, or pip install websockets")


def _websockets():
    try:
        import websockets  # type: ignore
    except ImportError as e:
        raise WarrenError(MISSING_WEBSOCKETS) from e
    return websockets


def ws_url(api_url: str, path: str) -> str:
    if api_url.startswith("https://"):
        return "wss://" + api_url[len("https://"):] + path
    return "ws://" + api_url[len("http://"):] + path


async def ws_connect(api_url: str, api_key: Optional[str], path: str, verify: bool = True,
                     timeout: float = 30.0, what: str = "the shell"):
    """Opens a WebSocket to the API with the key in the Authorization header; works with both
    the legacy (<14) and the new (>=14) `websockets` client signatures."""
    websockets = _websockets()
    headers: Dict[str, str] = {"Authorization": "Bearer " + api_key} if api_key else {}
    kwargs: Dict[str, Any] = {"max_size": None, "open_timeout": timeout}
    params = inspect.signature(websockets.connect).parameters
    kwargs["additional_headers" if "additional_headers" in params else "extra_headers"] = headers
    if api_url.startswith("https://"):
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        kwargs["ssl"] = ctx
    try:
        return await websockets.connect(ws_url(api_url, path), **kwargs)
    except asyncio.TimeoutError as e:
        raise WarrenTimeoutError("%s did not open within %.0f s" % (what, timeout)) from e
    except OSError as e:
        raise WarrenConnectionError("cannot reach Warren at %s: %s" % (api_url, e)) from e
    except Exception as e:  # the handshake was refused: surface the API's status
        status = getattr(getattr(e, "response", None), "status_code", None) or getattr(e, "status_code", None)
        raise WarrenError("cannot open %s: %s" % (what, e), status) from e


class _WsSession:
    """What every asyncio WebSocket session of the SDK shares: open on `async with`, close once."""

    _ws: Any = None

    async def open(self):
        raise NotImplementedError

    async def close(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            try:
                await ws.close()
            except Exception:
                pass

    async def __aenter__(self):
        if self._ws is None:
            await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class AsyncShell(_WsSession):
    """A bash session in a sandbox. `async with await sb.shell() as sh: await sh.run("cd /tmp")`."""

    def __init__(self, api_url: str, api_key: Optional[str], sandbox_id: str,
                 verify: bool = True) -> None:
        self._args = (api_url, api_key, _calls.shell_path(sandbox_id), verify)
        self._ws: Any = None
        self._next_id = 0
        self._lock = asyncio.Lock()
        self.closed = False

    async def open(self) -> "AsyncShell":
        self._ws = await ws_connect(*self._args)
        return self

    async def run(self, command: str, timeout: Optional[float] = None) -> ExecResult:
        """Runs one command in the session; returns its output and exit code. A command that
        ends the shell itself (`exit 3`) returns normally and closes the session; later calls
        raise WarrenError("Shell is closed"). Past `timeout` seconds the command (not the
        shell) is killed and WarrenTimeoutError carries its partial output."""
        if self.closed or self._ws is None:
            raise WarrenError(_calls.SHELL_CLOSED, None, "shell_closed")
        async with self._lock:
            self._next_id += 1
            rid = self._next_id
            try:
                await self._ws.send(_calls.shell_run_frame(rid, command, timeout))
                while True:
                    msg = json.loads(await self._ws.recv())
                    if msg.get("id") == rid:
                        break
            except Exception as e:
                if isinstance(e, WarrenError):
                    raise
                self.closed = True
                raise WarrenError(_calls.SHELL_CLOSED, None, "shell_closed") from e
            try:
                result, now_closed = _calls.shell_reply(msg)
            except WarrenError as e:
                if e.error_code == "shell_closed":
                    self.closed = True
                raise
            if now_closed:
                self.closed = True
            return result

    async def close(self) -> None:
        """Ends the bash and its process group."""
        self.closed = True
        await super().close()


class Shell(BlockingSession):
    """The blocking face of AsyncShell: `with sb.shell() as sh: sh.run("echo $FOO").stdout`."""

    def __init__(self, api_url: str, api_key: Optional[str], sandbox_id: str,
                 verify: bool = True) -> None:
        _websockets()
        super().__init__("warren-shell", AsyncShell(api_url, api_key, sandbox_id, verify))

    @property
    def closed(self) -> bool:
        return self._session.closed

    def run(self, command: str, timeout: Optional[float] = None) -> ExecResult:
        """See AsyncShell.run."""
        if self._loop.closed:
            raise WarrenError(_calls.SHELL_CLOSED, None, "shell_closed")
        return self._loop.run(self._session.run(command, timeout))

    def close(self) -> None:
        """Ends the bash and its process group."""
        super().close()
