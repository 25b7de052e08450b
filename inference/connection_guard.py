"""Connection hygiene under uvicorn: a deadline for each request head and a cap on open connections.

uvicorn closes a keep-alive connection that stays idle after a response, but a connection that
never sends a request (or sends its head a byte at a time) is held until the client goes, so a
few thousand silent sockets exhaust the server's file descriptors. The guard wraps uvicorn's HTTP
protocol class: a connection must complete each request head within FLASHHEAD_HEADER_TIMEOUT_S
(408, then closed), and beyond FLASHHEAD_MAX_CONNECTIONS open connections a new one is answered
503 and closed at once. Request bodies have their own deadlines (inference/api/uploads.py); a
connection upgraded to a WebSocket leaves the guard (the stream's `start` deadline takes over).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


def _response(status: str, code: str, message: str, remedy: str) -> bytes:
    body = json.dumps({"code": code, "message": message, "remedy": remedy}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


def guarded(protocol_class: type[Any], header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """`protocol_class` (uvicorn's H11Protocol or HttpToolsProtocol) with the guard's two limits."""
    too_many = _response("503 Service Unavailable", "at_capacity",
                         f"the server has {max_connections} open connections (FLASHHEAD_MAX_CONNECTIONS)",
                         "close idle connections or retry later")
    too_slow = _response("408 Request Timeout", "timeout",
                         f"no complete request head within {header_timeout_s:g} s (FLASHHEAD_HEADER_TIMEOUT_S)",
                         "send the request line and headers at once")

    class GuardedProtocol(protocol_class):  # type: ignore[misc, valid-type]
        head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.server_state.connections) > max_connections:
                transport.write(too_many)
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_request() or self.transport.get_protocol() is not self:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self._in_request():
                self._arm()  # the next request's head has the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _in_request(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self.head_timer = self.loop.call_later(header_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _expire(self) -> None:
            self.head_timer = None
            if self.transport.is_closing() or self.transport.get_protocol() is not self or self._in_request():
                return
            self.transport.write(too_slow)
            self.transport.close()

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{protocol_class.__name__}"
    return GuardedProtocol
