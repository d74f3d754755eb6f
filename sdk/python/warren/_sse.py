"""An incremental parser for `text/event-stream` (WHATWG HTML §9.2): feed it bytes as they
arrive, get back each event as soon as its blank line is in."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from .errors import WarrenError, WarrenTimeoutError, error_from_response
from .models import ExecResult


class SSEParser:
    def __init__(self) -> None:
        self._buf = b""
        self._event: Optional[str] = None
        self._data: List[str] = []

    def feed(self, chunk: bytes) -> List[Tuple[str, str]]:
        """Returns the (event, data) pairs completed by this chunk."""
        self._buf += chunk
        out = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                return out
            line = self._buf[:nl].rstrip(b"\r").decode("utf-8", "replace")
            self._buf = self._buf[nl + 1:]
            if line == "":
                if self._data or self._event:
                    out.append((self._event or "message", "\n".join(self._data)))
                self._event, self._data = None, []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    self._event = value
                elif name == "data":
                    self._data.append(value)


class ExecStreamState:
    """Turns exec/stream events into callbacks and, at the end, an ExecResult."""

    def __init__(self, on_stdout, on_stderr) -> None:
        self.parser = SSEParser()
        self.on = {"stdout": on_stdout, "stderr": on_stderr}
        self.out: Dict[str, List[str]] = {"stdout": [], "stderr": []}
        self.result: Optional[ExecResult] = None

    def feed(self, chunk: bytes) -> bool:
        """Handles a chunk; True once the stream has ended (exit), raises on an error event."""
        for event, data in self.parser.feed(chunk):
            obj: Any = json.loads(data) if data else {}
            if event in self.on:
                text = obj.get("data", "")
                self.out[event].append(text)
                if self.on[event]:
                    self.on[event](text)
            elif event == "exit":
                self.result = ExecResult("".join(self.out["stdout"]), "".join(self.out["stderr"]),
                                         int(obj.get("exit_code", -1)),
                                         float(obj.get("duration_ms", 0.0)))
                return True
            elif event == "error":
                err = error_from_response(504 if _code(obj) == "timeout" else 500, obj)
                if isinstance(err, WarrenTimeoutError):
                    err.body.setdefault("stdout", "".join(self.out["stdout"]))
                    err.body.setdefault("stderr", "".join(self.out["stderr"]))
                raise err
        return False

    def finish(self) -> ExecResult:
        if self.result is None:
            raise WarrenError("the exec stream ended before the command exited")
        return self.result


def _code(obj: Any) -> Optional[str]:
    err = obj.get("error") if isinstance(obj, dict) else None
    return err.get("code") if isinstance(err, dict) else None
