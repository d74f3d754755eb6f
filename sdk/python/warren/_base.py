"""What Sandbox and AsyncSandbox share: the constructor, configuration, and the bookkeeping
around an id. Holds no I/O."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from . import _calls
from .config import resolve_api_key, resolve_api_url
from .errors import WarrenError
from .models import SandboxInfo


class SandboxBase:
    def __init__(self, image: Optional[str] = None, *, vcpus: Optional[int] = None,
                 mem_mib: Optional[int] = None, disk_mib: Optional[int] = None,
                 timeout: Optional[int] = None, sandbox_timeout: Optional[int] = None,
                 network_profile: Optional[str] = None, allow: Optional[List[str]] = None,
                 deny: Optional[List[str]] = None, env: Optional[Dict[str, str]] = None,
                 credentials: Optional[Dict[str, str]] = None, isolation: Optional[str] = None,
                 metadata: Optional[Dict[str, Any]] = None, auto_resume: Optional[bool] = None,
                 on_idle: Optional[str] = None,
                 mask_request_host: Optional[str] = None, api_url: Optional[str] = None,
                 api_key: Optional[str] = None, verify_tls: bool = True) -> None:
        """Describes a sandbox; nothing is created until create() or `with`.

        Args:
            image: e.g. "debian:bookworm"; None = the node's default image.
            vcpus, mem_mib, disk_mib: resources (server defaults 1, 1024, 10240).
            timeout: default exec timeout in seconds (server default 30).
            sandbox_timeout: destroy after this many idle seconds; -1 never (default 300).
            network_profile: "default", "locked-down" or "internet".
            allow, deny: CIDRs or domain names; deny wins.
            env: environment of every command.
            credentials: secrets the egress proxy injects; the sandbox sees placeholders.
            isolation: "jail" (namespaces) or "microvm".
            metadata: free-form JSON kept with the sandbox.
            auto_resume: proxied traffic resumes it when hibernated (server default True).
            on_idle: what sandbox_timeout does, "destroy" (default) or "hibernate".
            api_url, api_key: override WARREN_API_URL / WARREN_API_KEY.
            verify_tls: verify the server certificate under https.
        """
        self.api_url = resolve_api_url(api_url)
        self.api_key = resolve_api_key(api_key, self.api_url)
        self.verify_tls = verify_tls
        self._spec = _calls.create_body(
            image, vcpus=vcpus, mem_mib=mem_mib, disk_mib=disk_mib, timeout=timeout,
            sandbox_timeout=sandbox_timeout, network_profile=network_profile, allow=allow,
            deny=deny, env=env, credentials=credentials, isolation=isolation, metadata=metadata,
            auto_resume=auto_resume, on_idle=on_idle, mask_request_host=mask_request_host)
        self.info: Optional[SandboxInfo] = None

    @property
    def id(self) -> str:
        """The sandbox id; raises WarrenError before create()."""
        if self.info is None:
            raise WarrenError("the sandbox has not been created yet (call create() or use `with`)")
        return self.info.id

    def _exec_wait(self, timeout: Optional[float]) -> float:
        return _calls.http_timeout(timeout, self.info.timeout if self.info else None)

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self.info.id if self.info else "(not created)")


def file_size(f: Any) -> int:
    try:
        return os.fstat(f.fileno()).st_size - f.tell()
    except (AttributeError, OSError):
        pos = f.tell()
        f.seek(0, os.SEEK_END)
        size = f.tell() - pos
        f.seek(pos)
        return size
