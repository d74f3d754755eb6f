"""Typed views of the API's JSON objects. Fields the server adds later are kept in `.raw`
rather than breaking construction, so an older SDK keeps working against a newer daemon."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Type, TypeVar

T = TypeVar("T")


def _build(cls: Type[T], obj: Dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in obj.items() if k in names}
    if "raw" in names:
        kwargs["raw"] = dict(obj)
    return cls(**kwargs)  # type: ignore[call-arg]


@dataclass
class SandboxInfo:
    """A sandbox as the API describes it (`GET /v1/sandboxes/{id}`)."""
    id: str
    image: str
    vcpus: int
    mem_mib: int
    disk_mib: int
    create_ms: float
    state: str = "running"
    isolation: str = "jail"
    node: str = ""
    timeout: int = 30
    sandbox_timeout: int = 300
    network_profile: str = "default"
    allow: List[str] = field(default_factory=list)
    deny: List[str] = field(default_factory=list)
    credentials: Dict[str, Any] = field(default_factory=dict)  # name -> {"hosts": [...]}; never the secret
    network: Dict[str, Any] = field(default_factory=dict)      # {"refused": [...], "refused_total": N} (get)
    created_at: str = ""
    parent_id: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "SandboxInfo":
        return _build(cls, obj)


@dataclass
class DestroyStats:
    """What a sandbox used over its life, measured when it was destroyed."""
    cpu_ms: float
    mem_peak_bytes: int
    disk_used_bytes: int
    uptime_ms: float
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "DestroyStats":
        return _build(cls, obj)


@dataclass
class ExecResult:
    """The outcome of a command: its output, exit code and how long it ran."""
    stdout: str
    stderr: str
    exit_code: int
    duration_ms: float = 0.0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.exit_code == 0

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "ExecResult":
        return cls(stdout=obj.get("stdout", ""), stderr=obj.get("stderr", ""),
                   exit_code=int(obj.get("exit_code", -1)),
                   duration_ms=float(obj.get("duration_ms", 0.0)),
                   truncated=bool(obj.get("truncated", False)))


@dataclass
class FileEntry:
    """One entry of a directory listing (`ls`)."""
    name: str
    path: str
    type: str
    size: int
    mode: str
    mtime: str = ""

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "FileEntry":
        return _build(cls, obj)


@dataclass
class Exposure:
    """A port exposed with `expose()`: `url` for API clients (send `Authorization: Bearer
    <token>`), `browser_url` to open in a browser (it sets a cookie, then redirects)."""
    port: int
    url: str
    browser_url: str = ""
    token: str = ""
    auth: bool = True
    created_at: str = ""

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "Exposure":
        return _build(cls, obj)


@dataclass
class ApiKey:
    """A key minted with `Client.create_key()`; `key` is shown only once."""
    key_id: str
    tenant: str
    admin: bool
    key: str = ""
    created_at: str = ""

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "ApiKey":
        return _build(cls, obj)


@dataclass
class SnapshotInfo:
    """A named snapshot (checkpoint) of a sandbox (`GET /v1/snapshots/{sid}`)."""
    snapshot_id: str
    sandbox_id: str
    name: str = ""
    created_at: str = ""
    size_bytes: int = 0
    image: str = ""
    isolation: str = "jail"
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "SnapshotInfo":
        return _build(cls, obj)
