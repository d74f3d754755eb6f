"""Watching a directory in a sandbox (`/v1/sandboxes/{id}/watch`, a WebSocket): one WatchEvent
per change — create, modify, delete, rename (and overflow when the kernel dropped events)."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Optional

from . import _calls
from ._loop import BlockingSession
from .errors import WarrenError, WarrenTimeoutError
from .shell import _websockets, _WsSession, ws_connect


@dataclass(frozen=True)
class WatchEvent:
    event: str  # create | modify | delete | rename | overflow
    path: str


def _event(frame: Any) -> WatchEvent:
    msg = json.loads(frame)
    if "error" in msg:
        err = msg["error"]
        raise WarrenError(err.get("message", "watch ended"), None, err.get("code"))
    return WatchEvent(msg["event"], msg["path"])


class AsyncWatch(_WsSession):
    """`async with await sb.watch("/work", recursive=True) as w: async for ev in w: ...`"""

    def __init__(self, api_url: str, api_key: Optional[str], sandbox_id: str, path: str,
                 recursive: bool, verify: bool = True) -> None:
        self._args = (api_url, api_key, _calls.watch_path(sandbox_id, path, recursive), verify)
        self._ws: Any = None

    async def open(self) -> "AsyncWatch":
        self._ws = await ws_connect(*self._args, what="the watch")
        return self

    async def next(self, timeout: Optional[float] = None) -> WatchEvent:
        """The next change; WarrenTimeoutError after `timeout` seconds without one."""
        if self._ws is None:
            raise WarrenError("the watch is closed")
        try:
            frame = await asyncio.wait_for(self._ws.recv(), timeout)
        except asyncio.TimeoutError as e:
            raise WarrenTimeoutError("no change within %.1f s" % timeout) from e
        except Exception as e:
            if isinstance(e, WarrenError):
                raise
            raise WarrenError("the watch ended: %s" % e) from e
        return _event(frame)

    def __aiter__(self) -> "AsyncWatch":
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            return await self.next()
        except WarrenTimeoutError:
            raise
        except WarrenError as e:
            if self._ws is None or "ended" in str(e):
                raise StopAsyncIteration from e
            raise



class Watch(BlockingSession):
    """The blocking face of AsyncWatch: `with sb.watch("/work") as w: ev = w.next(timeout=5)`;
    also iterable (`for ev in w:`)."""

    def __init__(self, api_url: str, api_key: Optional[str], sandbox_id: str, path: str,
                 recursive: bool, verify: bool = True) -> None:
        _websockets()
        super().__init__("warren-watch", AsyncWatch(api_url, api_key, sandbox_id, path, recursive, verify))

    def next(self, timeout: Optional[float] = None) -> WatchEvent:
        """See AsyncWatch.next."""
        if self._loop.closed:
            raise WarrenError("the watch is closed")
        return self._loop.run(self._session.next(timeout))

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> WatchEvent:
        try:
            return self.next()
        except WarrenTimeoutError:
            raise
        except WarrenError as e:
            raise StopIteration from e
