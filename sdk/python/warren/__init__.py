"""Warren's Python SDK: create sandboxes, run commands in them, keep shells open.

    from warren import Sandbox
    with Sandbox("debian:bookworm") as sb:
        print(sb.exec("uname -a").stdout)

Configuration: WARREN_API_URL (default http://127.0.0.1:7070) and WARREN_API_KEY (default: the
local daemon's admin key file when the server runs on this machine), or constructor arguments.
"""
from .aio import AsyncSandbox
from .errors import WarrenConnectionError, WarrenError, WarrenTimeoutError
from .models import ApiKey, DestroyStats, ExecResult, Exposure, FileEntry, SandboxInfo, SnapshotInfo
from .sandbox import Client, Sandbox
from .shell import AsyncShell, Shell
from .watch import AsyncWatch, Watch, WatchEvent

__version__ = "0.1.0"
__all__ = ["Sandbox", "AsyncSandbox", "Client", "Shell", "AsyncShell", "SandboxInfo", "SnapshotInfo",
           "DestroyStats", "ExecResult", "FileEntry", "Exposure", "ApiKey", "Watch", "AsyncWatch", "WatchEvent", "WarrenError",
           "WarrenTimeoutError", "WarrenConnectionError"]
