"""The API's requests as data (sans-IO): each function returns a Call that says what to send and
how to read the answer. Sandbox (blocking) and AsyncSandbox (asyncio) run the same Calls through
their own transport, so the two never disagree about the protocol."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Dict, Optional, Union
from urllib.parse import quote, urlencode

from .errors import WarrenError, WarrenTimeoutError, error_from_response
from .models import ApiKey, DestroyStats, ExecResult, Exposure, FileEntry, SandboxInfo, SnapshotInfo

#: Extra seconds the HTTP client waits beyond a command's own timeout before giving up.
TIMEOUT_MARGIN = 30.0
DEFAULT_REQUEST_TIMEOUT = 60.0


@dataclass
class Call:
    method: str
    path: str
    query: Optional[Dict[str, Any]] = None
    json_body: Any = None
    body: Union[bytes, BinaryIO, None] = None     # raw request body (files)
    body_size: Optional[int] = None
    timeout: float = DEFAULT_REQUEST_TIMEOUT      # seconds of silence before WarrenTimeoutError
    parse: Callable[[Any], Any] = lambda x: x     # decoded JSON (or raw bytes) -> result
    raw: bool = False                             # answer is bytes, not JSON
    sink: Optional[BinaryIO] = None               # stream the answer's body here
    headers: Dict[str, str] = field(default_factory=dict)

    def target(self) -> str:
        q = {k: v for k, v in (self.query or {}).items() if v is not None}
        return self.path + ("?" + urlencode(q) if q else "")

    def payload(self) -> Optional[bytes]:
        if self.json_body is None:
            return None
        return json.dumps(self.json_body).encode()


def _sb(sid: str, rest: str = "") -> str:
    return "/v1/sandboxes/" + quote(sid, safe="") + rest


def create_body(image: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    """The create request: only the fields that were given, so the server's defaults apply."""
    body = {k: v for k, v in fields.items() if v is not None}
    if image is not None:
        body["image"] = image
    return body


def create(body: Dict[str, Any]) -> Call:
    return Call("POST", "/v1/sandboxes", json_body=body, timeout=300.0, parse=SandboxInfo.from_json)


def get(sid: str) -> Call:
    return Call("GET", _sb(sid), parse=SandboxInfo.from_json)


def list_sandboxes() -> Call:
    return Call("GET", "/v1/sandboxes",
                parse=lambda o: [SandboxInfo.from_json(s) for s in o.get("sandboxes", [])])


def destroy(sid: str) -> Call:
    return Call("DELETE", _sb(sid), timeout=120.0, parse=DestroyStats.from_json)


# -- snapshots (API.md "Fork", "Hibernate / resume", "Named snapshots") ---------------------------
def fork(sid: str, count: int) -> Call:
    return Call("POST", _sb(sid, "/fork"), json_body={"count": count}, timeout=600.0,
                parse=lambda o: [SandboxInfo.from_json(s) for s in o.get("sandboxes", [])])


def set_network(sid: str, network_profile: Optional[str], allow: Optional[list], deny: Optional[list]) -> Call:
    body = {k: v for k, v in (("network_profile", network_profile), ("allow", allow), ("deny", deny)) if v is not None}
    return Call("PATCH", _sb(sid, "/network"), json_body=body, parse=SandboxInfo.from_json)


def hibernate(sid: str) -> Call:
    return Call("POST", _sb(sid, "/hibernate"), timeout=300.0, parse=SandboxInfo.from_json)


def resume(sid: str) -> Call:
    return Call("POST", _sb(sid, "/resume"), timeout=300.0, parse=SandboxInfo.from_json)


def checkpoint(sid: str, name: Optional[str]) -> Call:
    body = {} if name is None else {"name": name}
    return Call("POST", _sb(sid, "/checkpoints"), json_body=body, timeout=600.0, parse=SnapshotInfo.from_json)


def _snap(snapshot_id: str, rest: str = "") -> str:
    return "/v1/snapshots/" + quote(snapshot_id, safe="") + rest


def restore(snapshot_id: str, sandbox_timeout: Optional[int], metadata: Optional[Dict[str, Any]]) -> Call:
    body = {k: v for k, v in {"sandbox_timeout": sandbox_timeout, "metadata": metadata}.items() if v is not None}
    return Call("POST", _snap(snapshot_id, "/restore"), json_body=body, timeout=600.0, parse=SandboxInfo.from_json)


def list_snapshots() -> Call:
    return Call("GET", "/v1/snapshots", parse=lambda o: [SnapshotInfo.from_json(s) for s in o.get("snapshots", [])])


def get_snapshot(snapshot_id: str) -> Call:
    return Call("GET", _snap(snapshot_id), parse=SnapshotInfo.from_json)


def delete_snapshot(snapshot_id: str) -> Call:
    return Call("DELETE", _snap(snapshot_id), parse=lambda _: None)


def exec_body(command: str, timeout: Optional[float], env: Optional[Dict[str, str]],
              cwd: Optional[str], stdin: Optional[str]) -> Dict[str, Any]:
    if not command:
        raise ValueError("command must be a non-empty string")
    body: Dict[str, Any] = {"command": command}
    if timeout is not None:
        body["timeout"] = int(timeout)
    if env:
        body["env"] = dict(env)
    if cwd is not None:
        body["cwd"] = cwd
    if stdin is not None:
        body["stdin"] = stdin
    return body


def http_timeout(cmd_timeout: Optional[float], default_timeout: Optional[float]) -> float:
    return float(cmd_timeout or default_timeout or 30) + TIMEOUT_MARGIN


def exec_(sid: str, body: Dict[str, Any], wait: float) -> Call:
    return Call("POST", _sb(sid, "/exec"), json_body=body, timeout=wait, parse=ExecResult.from_json)


def exec_stream(sid: str, body: Dict[str, Any], wait: float) -> Call:
    return Call("POST", _sb(sid, "/exec/stream"), json_body=body, timeout=wait, raw=True,
                headers={"Accept": "text/event-stream"})


def shell_path(sid: str) -> str:
    return _sb(sid, "/shell")


def watch_path(sid: str, path: str, recursive: bool) -> str:
    return _sb(sid, "/watch") + "?" + urlencode({"path": path, "recursive": "true" if recursive else "false"})


def pty_path(sid: str, cols: int = 80, rows: int = 24, command: Optional[str] = None) -> str:
    q: Dict[str, Any] = {"cols": cols, "rows": rows}
    if command:
        q["command"] = command
    return _sb(sid, "/pty") + "?" + urlencode(q)


# --- files ------------------------------------------------------------------------------------

def put_file(sid: str, path: str, data: Union[bytes, BinaryIO], size: int,
             mode: Optional[int] = None) -> Call:
    return Call("PUT", _sb(sid, "/files"),
                query={"path": path, "mode": None if mode is None else "%04o" % mode},
                body=data, body_size=size, timeout=300.0, parse=lambda o: int(o["size"]),
                headers={"Content-Type": "application/octet-stream"})


def get_file(sid: str, path: str, sink: Optional[BinaryIO] = None) -> Call:
    return Call("GET", _sb(sid, "/files"), query={"path": path}, raw=True, sink=sink, timeout=300.0)


def delete_file(sid: str, path: str, recursive: bool = False) -> Call:
    return Call("DELETE", _sb(sid, "/files"),
                query={"path": path, "recursive": "true" if recursive else None},
                parse=lambda _: None)


def ls(sid: str, path: str) -> Call:
    return Call("GET", _sb(sid, "/ls"), query={"path": path},
                parse=lambda o: [FileEntry.from_json(e) for e in o.get("entries", [])])


# --- public URLs ------------------------------------------------------------------------------

def url(sid: str, port: int) -> Call:
    return Call("GET", _sb(sid, "/url"), query={"port": int(port)}, parse=lambda o: o["url"])


def expose(sid: str, port: int, auth: bool) -> Call:
    return Call("POST", _sb(sid, "/expose"), json_body={"port": int(port), "auth": bool(auth)},
                parse=Exposure.from_json)


def exposures(sid: str) -> Call:
    return Call("GET", _sb(sid, "/exposures"),
                parse=lambda o: [Exposure.from_json(e) for e in o.get("exposures", [])])


def unexpose(sid: str, port: int) -> Call:
    return Call("DELETE", _sb(sid, "/exposures/%d" % int(port)), parse=lambda _: None)


# --- node -------------------------------------------------------------------------------------

def info() -> Call:
    return Call("GET", "/v1/info")


def create_key(tenant: str, admin: bool) -> Call:
    return Call("POST", "/v1/admin/keys", json_body={"tenant": tenant, "admin": admin},
                parse=ApiKey.from_json)


def revoke_key(key_id: str) -> Call:
    return Call("DELETE", "/v1/admin/keys/" + quote(key_id, safe=""), parse=lambda _: None)


def shell_run_frame(req_id: int, command: str, timeout: Optional[float]) -> str:
    msg: Dict[str, Any] = {"op": "run", "id": req_id, "command": command}
    if timeout is not None:
        msg["timeout"] = int(timeout)
    return json.dumps(msg)



SHELL_CLOSED = "Shell is closed"


def shell_reply(msg: Dict[str, Any]) -> "tuple[ExecResult, bool]":
    """Reads one shell reply: (result, shell_now_closed), or raises the error it carries."""
    err = msg.get("error")
    if isinstance(err, dict):
        if err.get("code") == "shell_closed":
            raise WarrenError(SHELL_CLOSED, None, "shell_closed", err)
        if err.get("code") == "timeout":
            body = dict(err, stdout=msg.get("stdout", ""), stderr=msg.get("stderr", ""))
            raise WarrenTimeoutError(err.get("message") or "command timed out", 504, "timeout", body)
        raise error_from_response(400, msg)
    return ExecResult.from_json(msg), bool(msg.get("closed"))
