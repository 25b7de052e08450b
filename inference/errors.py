"""Errors of the served module, each mapped to an HTTP status and a WebSocket error code.

The server shares no run-time code with `ops/`, so it has its own small error root.
"""

from __future__ import annotations


class InferenceError(Exception):
    """Base error. `code` is the stable machine-readable name sent to clients."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, remedy: str | None = None):
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "remedy": self.remedy}


class ConfigError(InferenceError):
    """A FLASHHEAD_* setting is missing or invalid; the server refuses to start."""

    code = "config"


class BackendError(InferenceError):
    """The backend cannot load or run (missing repo, checkpoint or GPU)."""

    status = 503
    code = "backend"


class BadInput(InferenceError):
    """The client sent something the server cannot use (bad image, audio, message)."""

    status = 400
    code = "bad_input"


class TooLarge(BadInput):
    """An upload or decoded media exceeds a configured limit."""

    status = 413
    code = "too_large"


class UnsupportedMedia(BadInput):
    """The media could not be decoded as any supported format."""

    status = 415
    code = "unsupported_media"


class NotFound(InferenceError):
    status = 404
    code = "not_found"


class Unauthorized(InferenceError):
    status = 401
    code = "unauthorized"


class AtCapacity(InferenceError):
    """All stream slots are busy; retry after `retry_after` seconds."""

    status = 503
    code = "at_capacity"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message, "retry later or raise FLASHHEAD_MAX_STREAMS if the GPU has headroom")
        self.retry_after = retry_after


class NotReady(InferenceError):
    """The model is still loading or the server is draining."""

    status = 503
    code = "not_ready"


class Timeout(InferenceError):
    """The client did not send what the protocol expects in time."""

    status = 408
    code = "timeout"
