"""One stream's WebSocket as typed protocol messages: receive raw or parsed, send under one lock."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from inference import protocol
from inference.errors import BadInput, InferenceError


class ClientGone(Exception):
    """The client closed the connection."""


class StreamWire:
    """Sends are serialised (`lock`), so a frame, its stats and an ack never interleave."""

    def __init__(self, websocket: WebSocket):
        self.ws = websocket
        self.lock = asyncio.Lock()

    async def receive(self) -> dict[str, Any]:
        """The next ASGI message (`text` or `bytes`); ClientGone when the client left."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise ClientGone
        return dict(message)

    @staticmethod
    def parse(text: str) -> protocol.Message:
        """A client's text message, typed; BadInput (close 1007) when it is not one."""
        try:
            return protocol.parse_client_message(text)
        except protocol.ProtocolError as error:
            raise BadInput(str(error), "send JSON objects with a `type`; see docs/protocol.md") from None

    async def send(self, message: protocol.Message) -> None:
        async with self.lock:
            await self.send_unlocked(message)

    async def send_unlocked(self, message: protocol.Message) -> None:
        """For callers already holding `lock` (an ack that must count exactly the frames sent)."""
        await self.ws.send_text(message.to_json())

    async def close(self, code: int = protocol.CloseCode.NORMAL, reason: str = "") -> None:
        await self.ws.close(code, reason=reason)

    async def fail(self, error: InferenceError) -> None:
        """Send the typed error, then close with its code and `code: message` as the reason; quiet if gone."""
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        message = protocol.Error(code=error.code, message=error.message, remedy=error.remedy)
        with contextlib.suppress(Exception):
            await self.send(message)
            await self.close(message.close_code, message.close_reason)
