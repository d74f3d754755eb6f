"""A private asyncio loop on a daemon thread: how the blocking Shell and Watch drive their
asyncio counterparts (the `websockets` client is asyncio-only), and their shared open/close
and context-manager plumbing."""
from __future__ import annotations

import asyncio
import threading


class LoopThread:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._loop.is_closed()

    def run(self, coro):
        """Runs `coro` on the loop and waits for its result (or exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_closed():
            self._loop.close()


class BlockingSession:
    """The blocking face of an asyncio session (AsyncShell, AsyncWatch) run on its own LoopThread:
    opened in the constructor, closed by close(), `with`, or garbage collection."""

    def __init__(self, name: str, session) -> None:
        self._loop = LoopThread(name)
        self._session = session
        try:
            self._loop.run(session.open())
        except BaseException:
            self._loop.stop()
            raise

    def close(self) -> None:
        if not self._loop.closed:
            self._loop.run(self._session.close())
            self._loop.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
