"""Where the API is and which key to use: constructor arguments, then WARREN_API_URL /
WARREN_API_KEY, then (for a server on this machine) the daemon's admin key file."""
from __future__ import annotations

import os
import socket
from typing import List, Optional
from urllib.parse import urlsplit

DEFAULT_API_URL = "http://127.0.0.1:7070"


def resolve_api_url(api_url: Optional[str] = None) -> str:
    """The API's base URL, without a trailing slash."""
    url = api_url or os.environ.get("WARREN_API_URL") or DEFAULT_API_URL
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def _is_local(host: str) -> bool:
    if host in ("localhost", "::1", "0.0.0.0", "") or host.startswith("127."):
        return True
    try:
        return host == socket.gethostname()
    except OSError:
        return False


def admin_key_files() -> List[str]:
    """The admin key files a local daemon writes, in the order they are tried:
    $WARREN_DATA_DIR/admin.key, /var/lib/warren/admin.key, ~/.local/share/warren/admin.key."""
    files = []
    if os.environ.get("WARREN_DATA_DIR"):
        files.append(os.path.join(os.environ["WARREN_DATA_DIR"], "admin.key"))
    files.append("/var/lib/warren/admin.key")
    files.append(os.path.join(os.path.expanduser("~"), ".local", "share", "warren", "admin.key"))
    return files


def resolve_api_key(api_key: Optional[str], api_url: str) -> Optional[str]:
    """The key to send: the argument, WARREN_API_KEY, or a readable local admin key file when the
    server runs on this machine. None when there is none (the API will then answer 401)."""
    if api_key:
        return api_key
    if os.environ.get("WARREN_API_KEY"):
        return os.environ["WARREN_API_KEY"].strip()
    if not _is_local(urlsplit(api_url).hostname or ""):
        return None
    for path in admin_key_files():
        try:
            with open(path) as f:
                key = f.read().strip()
            if key:
                return key
        except OSError:
            continue
    return None
