"""ASGI middleware, one concern each: bearer-token auth and request body limits."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.errors import InferenceError, TooLarge, Unauthorized

OPEN_PATHS = frozenset({"/healthz", "/livez", "/startupz", "/readyz", "/v2/health/live", "/v2/health/ready"})
# The live view's static files (when turned on): a browser cannot send a header when it opens a
# page; the page holds no secret and sends the token itself.
LIVE_VIEW = "live"


async def send_error(send: Send, error: InferenceError, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error.to_dict()).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def token_matches(supplied: str | bytes | None, expected: str) -> bool:
    """Constant-time comparison; anything that is not ASCII (a lone surrogate, Latin-1 bytes) is simply wrong."""
    if supplied is None:
        return False
    if isinstance(supplied, str):
        if not supplied.isascii():
            return False
        supplied = supplied.encode("ascii")
    return hmac.compare_digest(supplied, expected.encode("ascii"))


def bearer_token(header: bytes) -> bytes | None:
    """The credentials of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 7235)."""
    scheme, _, credentials = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return credentials.strip()


class BearerAuth:
    """Require `Authorization: Bearer <token>` on everything but the health probes and the live view's files.

    A WebSocket without the header is let through unmarked: the stream then requires the token
    in its `start` message (browsers cannot set headers on WebSockets).
    """

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.expected = token or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (self.expected is None or scope["type"] not in ("http", "websocket") or path in OPEN_PATHS
                or (scope["type"] == "http" and path.split("/")[1:2] == [LIVE_VIEW])):
            await self.app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(b"authorization", b"")
        authorized = token_matches(bearer_token(supplied), self.expected)
        if scope["type"] == "websocket":
            scope["flashhead.authorized"] = authorized
            await self.app(scope, receive, send)
        elif authorized:
            await self.app(scope, receive, send)
        else:
            error = Unauthorized("missing or wrong bearer token", "send `Authorization: Bearer <FLASHHEAD_API_TOKEN>`")
            await send_error(send, error, {"WWW-Authenticate": "Bearer"})


class BodyLimit:
    """Refuse HTTP bodies over `limit` bytes with 413, by header and while streaming."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await send_error(send, self.too_large(int(declared)))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message: dict[str, Any] = dict(await receive())
            received += len(message.get("body", b""))
            if received > self.limit:
                raise self.too_large(received)
            return message

        await self.app(scope, limited_receive, send)

    def too_large(self, size: int) -> TooLarge:
        return TooLarge(f"the request body ({size} bytes or more) exceeds {self.limit} bytes",
                        "send a smaller file (see the limits in GET /v1/info)")
