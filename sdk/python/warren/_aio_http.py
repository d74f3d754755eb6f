"""The asyncio transport: HTTP/1.1 over asyncio streams (no third-party HTTP library), with a
small keep-alive pool. Runs the same Calls as the blocking transport and maps failures to the
same errors."""
from __future__ import annotations

import asyncio
import json
import ssl
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ._calls import Call
from ._http import CHUNK, USER_AGENT
from .errors import WarrenConnectionError, WarrenError, WarrenTimeoutError, error_from_response

Conn = Tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _StaleConnection(Exception):
    """A pooled connection the server had closed before we sent on it."""


class AsyncResponse:
    """A response whose headers are read; the body is read with read_some()/read_all()."""

    def __init__(self, reader: asyncio.StreamReader, status: int, headers: Dict[str, str],
                 method: str, timeout: float) -> None:
        self.status, self.headers, self._r, self._timeout = status, headers, reader, timeout
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._left: Optional[int] = None  # bytes left: whole body, or current chunk if chunked
        if not self.chunked and "content-length" in headers:
            self._left = int(headers["content-length"])
        if method == "HEAD" or status in (204, 304):
            self._left, self.chunked = 0, False
        self.done = self._left == 0
        self.keep_alive = headers.get("connection", "").lower() != "close" and \
            (self.chunked or self._left is not None)

    async def _io(self, coro):
        try:
            return await asyncio.wait_for(coro, self._timeout)
        except asyncio.TimeoutError as e:
            raise WarrenTimeoutError("the server stopped answering for %.0f s" % self._timeout) from e
        except (OSError, asyncio.IncompleteReadError) as e:
            raise WarrenConnectionError("connection lost while reading a response: %s" % e) from e

    async def read_some(self) -> bytes:
        """The next body bytes as they arrive; b"" at the end of the body."""
        if self.done:
            return b""
        if self.chunked:
            if not self._left:
                line = await self._io(self._r.readline())
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await self._io(self._r.readline())) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self.done = True
                    return b""
                self._left = size
            data = await self._io(self._r.read(min(self._left, CHUNK)))
            if not data:
                raise WarrenConnectionError("connection closed in the middle of a chunk")
            self._left -= len(data)
            if self._left == 0:
                await self._io(self._r.readexactly(2))
            return data
        if self._left is None:  # delimited by close
            data = await self._io(self._r.read(CHUNK))
            self.done = not data
            return data
        data = await self._io(self._r.read(min(self._left, CHUNK)))
        if not data:
            raise WarrenConnectionError("connection closed before the body was complete")
        self._left -= len(data)
        self.done = self._left == 0
        return data

    async def read_all(self) -> bytes:
        parts = []
        while True:
            b = await self.read_some()
            if not b:
                return b"".join(parts)
            parts.append(b)


class AsyncHttpTransport:
    def __init__(self, api_url: str, api_key: Optional[str], verify: bool = True) -> None:
        u = urlsplit(api_url)
        if u.scheme not in ("http", "https"):
            raise WarrenError("WARREN_API_URL must be http:// or https://, not %r" % api_url)
        self.api_url, self.api_key = api_url, api_key
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.prefix = u.path.rstrip("/")
        self.ssl: Optional[ssl.SSLContext] = ssl.create_default_context() if u.scheme == "https" else None
        if self.ssl and not verify:
            self.ssl.check_hostname = False
            self.ssl.verify_mode = ssl.CERT_NONE
        self._idle: List[Conn] = []

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, w in idle:
            w.close()

    async def _connect(self, timeout: float) -> Conn:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=CHUNK), timeout)
        except asyncio.TimeoutError as e:
            raise WarrenTimeoutError("cannot connect to %s within %.0f s" % (self.api_url, timeout)) from e
        except OSError as e:
            raise WarrenConnectionError("cannot reach Warren at %s: %s" % (self.api_url, e)) from e

    def _head(self, call: Call, body_len: int) -> bytes:
        h = {"Host": "%s:%d" % (self.host, self.port), "User-Agent": USER_AGENT,
             "Content-Length": str(body_len), "Connection": "keep-alive"}
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        if call.json_body is not None:
            h["Content-Type"] = "application/json"
        h.update(call.headers)
        lines = ["%s %s%s HTTP/1.1" % (call.method, self.prefix, call.target())]
        lines += ["%s: %s" % kv for kv in h.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _write(self, w: asyncio.StreamWriter, call: Call) -> None:
        payload = call.payload() if call.body is None else call.body
        if isinstance(payload, (bytes, bytearray)) or payload is None:
            w.write(self._head(call, len(payload or b"")) + (payload or b""))
            await w.drain()
            return
        w.write(self._head(call, int(call.body_size or 0)))
        while True:  # a file: stream it, never hold it whole
            chunk = payload.read(CHUNK)
            if not chunk:
                break
            w.write(chunk)
            await w.drain()

    async def _exchange(self, conn: Conn, call: Call, reused: bool) -> AsyncResponse:
        r, w = conn
        try:
            await self._write(w, call)
            status_line = await asyncio.wait_for(r.readline(), call.timeout)
            if not status_line:
                raise ConnectionResetError("server closed the connection")
            parts = status_line.decode("latin-1").split(" ", 2)
            headers: Dict[str, str] = {}
            while True:
                line = await asyncio.wait_for(r.readline(), call.timeout)
                if line in (b"\r\n", b"\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            return AsyncResponse(r, int(parts[1]), headers, call.method, call.timeout)
        except asyncio.TimeoutError as e:
            w.close()
            raise WarrenTimeoutError("no answer from %s within %.0f s" % (self.api_url, call.timeout)) from e
        except (ConnectionResetError, BrokenPipeError) as e:
            w.close()
            if reused and (call.body is None or isinstance(call.body, bytes)):
                raise _StaleConnection() from e
            raise WarrenConnectionError("connection to %s lost: %s" % (self.api_url, e)) from e
        except (OSError, ValueError, IndexError) as e:
            w.close()
            raise WarrenConnectionError("bad answer from %s: %s" % (self.api_url, e)) from e

    @asynccontextmanager
    async def open(self, call: Call) -> AsyncIterator[AsyncResponse]:
        """Sends a Call and yields the 2xx response to read; raises the API's error otherwise."""
        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect(call.timeout)
            try:
                resp = await self._exchange(conn, call, reused)
                break
            except _StaleConnection:
                continue
        try:
            if resp.status >= 300:
                data = await resp.read_all()
                body: Any = data
                if resp.headers.get("content-type", "").startswith("application/json"):
                    try:
                        body = json.loads(data)
                    except ValueError:
                        pass
                raise error_from_response(resp.status, body)
            yield resp
        finally:
            if resp.done and resp.keep_alive and len(self._idle) < 8:
                self._idle.append(conn)
            else:
                conn[1].close()

    async def call(self, call: Call) -> Any:
        async with self.open(call) as resp:
            if call.sink is not None:
                while True:
                    chunk = await resp.read_some()
                    if not chunk:
                        return call.parse(None)
                    call.sink.write(chunk)
            data = await resp.read_all()
        if call.raw:
            return call.parse(data)
        return call.parse(json.loads(data) if data else None)
