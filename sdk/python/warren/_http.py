"""The blocking transport: http.client with a small keep-alive pool. Runs Calls, maps failures to
WarrenError / WarrenTimeoutError / WarrenConnectionError. Never retries a request that may have
reached the server, except the one case every HTTP client retries: a pooled connection the
server had already closed when we reused it."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

from ._calls import Call
from .errors import WarrenConnectionError, WarrenError, WarrenTimeoutError, error_from_response

CHUNK = 1 << 20
USER_AGENT = "warren-python"


class HttpTransport:
    def __init__(self, api_url: str, api_key: Optional[str], verify: bool = True) -> None:
        u = urlsplit(api_url)
        if u.scheme not in ("http", "https"):
            raise WarrenError("WARREN_API_URL must be http:// or https://, not %r" % api_url)
        self.api_url = api_url
        self.scheme, self.host, self.port = u.scheme, u.hostname or "127.0.0.1", u.port
        self.prefix = u.path.rstrip("/")
        self.api_key = api_key
        self._ctx = ssl.create_default_context() if u.scheme == "https" else None
        if self._ctx and not verify:
            self._ctx.check_hostname = False
            self._ctx.verify_mode = ssl.CERT_NONE
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------------
    def _new_conn(self, timeout: float) -> http.client.HTTPConnection:
        if self._ctx is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self._ctx, blocksize=CHUNK)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout, blocksize=CHUNK)

    def _take(self, timeout: float):
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            return self._new_conn(timeout), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def headers(self, call: Call) -> Dict[str, str]:
        h = {"User-Agent": USER_AGENT}
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        if call.json_body is not None:
            h["Content-Type"] = "application/json"
        h.update(call.headers)
        return h

    # -- requests ------------------------------------------------------------------------------
    def _send(self, call: Call):
        """Sends the request; returns (connection, response) with the headers read."""
        payload = call.payload() if call.body is None else call.body
        headers = self.headers(call)
        if call.body is not None and call.body_size is not None:
            headers["Content-Length"] = str(call.body_size)
        while True:
            conn, reused = self._take(call.timeout)
            try:
                conn.request(call.method, self.prefix + call.target(), body=payload, headers=headers)
                return conn, conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                rewindable = call.body is None or isinstance(call.body, bytes)
                if reused and rewindable:
                    continue  # the server closed an idle keep-alive connection: retry once, fresh
                raise WarrenConnectionError("connection to %s lost: %s" % (self.api_url, e)) from e
            except socket.timeout as e:
                conn.close()
                raise WarrenTimeoutError("no answer from %s within %.0f s" % (self.api_url, call.timeout)) from e
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise WarrenConnectionError("cannot reach Warren at %s: %s" % (self.api_url, e)) from e

    def _finish(self, conn, resp) -> None:
        if resp.will_close:
            conn.close()
        else:
            self._give_back(conn)

    def call(self, call: Call) -> Any:
        """Runs a Call to completion and returns its parsed result."""
        with self.open(call) as resp:
            if call.sink is not None:
                _read_into(resp, call.sink, self.api_url)
                return call.parse(None)
            data = _read_all(resp, self.api_url)
        if call.raw:
            return call.parse(data)
        return call.parse(json.loads(data) if data else None)

    @contextmanager
    def open(self, call: Call) -> Iterator[http.client.HTTPResponse]:
        """Sends a Call and yields the 2xx response for the caller to read (streams); raises the
        API's error otherwise. The connection goes back to the pool only if fully read."""
        conn, resp = self._send(call)
        ok = False
        try:
            if resp.status >= 300:
                data = _read_all(resp, self.api_url)
                ctype = resp.getheader("Content-Type", "")
                body: Any = data
                if ctype.startswith("application/json"):
                    try:
                        body = json.loads(data)
                    except ValueError:
                        pass
                ok = True
                raise error_from_response(resp.status, body)
            yield resp
            ok = resp.isclosed() or resp.length == 0
        finally:
            if ok:
                self._finish(conn, resp)
            else:
                conn.close()


@contextmanager
def _reading(api_url: str) -> Iterator[None]:
    """Maps failures while reading a response body to the SDK's errors."""
    try:
        yield
    except socket.timeout as e:
        raise WarrenTimeoutError("%s stopped answering" % api_url) from e
    except (OSError, http.client.HTTPException) as e:
        raise WarrenConnectionError("connection to %s lost: %s" % (api_url, e)) from e


def _read_all(resp, api_url: str) -> bytes:
    with _reading(api_url):
        return resp.read()


def _read_into(resp, sink, api_url: str) -> None:
    with _reading(api_url):
        while True:
            chunk = resp.read(CHUNK)
            if not chunk:
                return
            sink.write(chunk)


def read_some(resp, api_url: str) -> bytes:
    """Whatever body bytes are available now (at least one, or b"" at the end)."""
    with _reading(api_url):
        return resp.read1(65536)
