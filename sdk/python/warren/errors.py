"""The SDK's error types. Every failure a caller can see is a WarrenError (or a subclass), so
`except WarrenError` is enough; `.code` is the HTTP status and `.error_code` the API's
snake_case code (`not_found`, `timeout`, ...)."""
from __future__ import annotations

from typing import Any, Optional


class WarrenError(Exception):
    """An error answered by the Warren API, or raised by the SDK itself.

    Attributes:
        code: the HTTP status (e.g. 404), or None when the error did not come from a response.
        error_code: the API's error code (e.g. ``"not_found"``), or None.
        message: the human-readable text.
        body: the decoded error object of the response, when there was one.
    """

    def __init__(self, message: str, code: Optional[int] = None,
                 error_code: Optional[str] = None, body: Optional[dict] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_code = error_code
        self.body = body or {}

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return "%s (%s %s)" % (self.message, self.code, self.error_code or "")


class WarrenTimeoutError(WarrenError):
    """A command ran past its timeout (the API's 504 ``timeout``; ``stdout``/``stderr`` hold
    what it printed before it was killed), or the server did not answer in time."""

    @property
    def stdout(self) -> str:
        return self.body.get("stdout", "")

    @property
    def stderr(self) -> str:
        return self.body.get("stderr", "")


class WarrenConnectionError(WarrenError):
    """The API could not be reached (refused, reset, DNS, TLS)."""


def error_from_response(status: int, payload: Any) -> WarrenError:
    """Maps a non-2xx response (decoded JSON, or text) to the matching exception."""
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        code = err.get("code")
        msg = err.get("message") or code or "HTTP %d" % status
        cls = WarrenTimeoutError if code == "timeout" else WarrenError
        return cls(msg, status, code, err)
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
    return WarrenError(text.strip() or "HTTP %d" % status, status, None)
