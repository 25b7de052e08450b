"""Async Python client for the FlashHead inference server (HTTP + the WS /v1/stream protocol).

    async with FlashheadClient("http://127.0.0.1:8000", token=None) as client:
        await client.ready()                           # True once the model is warm
        avatar = await client.create_avatar(Path("face.jpg"))
        mp4 = await client.generate(Path("speech.wav"), avatar_id=avatar)
        result = await client.stream_audio(pcm16_bytes, sample_rate=24000, avatar_id=avatar)
        print(result.summary["fps"], len(result.frames), result.ttff_s)

For finer control, `client.stream(...)` opens a `StreamSession`: send PCM16 with `send_audio`,
mark utterances with `segment_end`, `interrupt`, `end`; iterate `events()` for `Frame`s and the
typed messages of `inference.protocol` (`Stats`, `Playback`, `Summary`). Errors from the server
raise `ServerError` with its code, message and (HTTP) status or close code.
Only httpx and websockets are needed (no numpy), so the operator install can use it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from inference import protocol
from inference.retry import RetryPolicy, retry_refused

BytesOrPath = bytes | Path


class ServerError(Exception):
    """The server refused or failed a request. `code` is the protocol error code."""

    def __init__(self, code: str, message: str, *, status: int | None = None, close_code: int | None = None,
                 retry_after: float | None = None, remedy: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.close_code = close_code
        self.retry_after = retry_after
        self.remedy = remedy


@dataclass
class Frame:
    """One video frame from a stream; `data` is JPEG bytes or raw RGB (height*width*3)."""

    index: int
    chunk: int
    pts: float  # seconds
    output: str
    data: bytes
    received_at: float  # time.monotonic()
    # Protocol 2 (None / defaults from a v1 server): the generation epoch, the span of input audio the
    # frame shows in samples at the client's rate [audio_start, audio_end), the segment's last frame.
    epoch: int = 0
    audio_start: int | None = None
    audio_end: int | None = None
    segment_end: bool = False
    idle: bool = False

    @classmethod
    def parse(cls, message: bytes) -> Frame:
        """A binary frame message (v1 or v2 header) as a Frame; ValueError when it is not one."""
        header = protocol.FrameHeader.unpack(message)
        return cls(header.index, header.chunk, header.pts_us / 1e6, header.output, message[header.size:],
                   time.monotonic(), header.epoch, header.audio_start, header.audio_end, header.segment_end,
                   header.idle)

    def to_array(self, width: int = 512, height: int = 512) -> Any:
        """Decode to an H x W x 3 uint8 numpy array (needs numpy; pillow for JPEG)."""
        import numpy as np

        if self.output == "rgb":
            return np.frombuffer(self.data, dtype=np.uint8).reshape(height, width, 3)
        import io

        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(self.data)).convert("RGB"))


@dataclass
class StreamResult:
    """Everything a finished stream produced (see `FlashheadClient.stream_audio`)."""

    ready: protocol.Ready
    frames: list[Frame]
    stats: list[protocol.Stats]
    playback: list[protocol.Playback]
    summary: protocol.Summary | None = None
    first_audio_at: float | None = None
    first_frame_at: float | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ttff_s(self) -> float | None:
        """Seconds from the first audio byte sent to the first frame received."""
        if self.first_audio_at is None or self.first_frame_at is None:
            return None
        return self.first_frame_at - self.first_audio_at


class StreamSession:
    """An open WS /v1/stream session (after `ready`). Use through `FlashheadClient.stream`."""

    def __init__(self, connection: ClientConnection, ready: protocol.Ready):
        self.connection = connection
        self.ready = ready
        self.first_audio_at: float | None = None
        self.summary: protocol.Summary | None = None
        self.epoch = 0  # interrupts sent: with protocol 2, frames of an older epoch are stale

    def is_stale(self, frame: Frame) -> bool:
        """True for a frame generated before the last `interrupt` this session sent (protocol 2; a v1
        server's frames are never stale by this test)."""
        return self.ready.protocol >= 2 and frame.epoch < self.epoch

    async def send_audio(self, pcm: bytes) -> None:
        """Send PCM16 little-endian audio (any length, interleaved if several channels)."""
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()
        await self.connection.send(pcm)

    async def segment_end(self) -> None:
        """Mark the end of an utterance: the server flushes its partial chunk (padded with silence)."""
        await self._send(protocol.SegmentEnd())

    async def interrupt(self) -> None:
        """Drop audio and frames not yet sent; the server answers with a `playback` interrupted ack.
        Frames already on the way still arrive: `is_stale` tells them apart."""
        self.epoch += 1
        await self._send(protocol.Interrupt())

    async def end(self) -> None:
        """No more audio: the server sends the remaining frames, then a `summary`, then closes."""
        await self._send(protocol.End())

    async def events(self) -> AsyncIterator[Frame | protocol.Message]:
        """Frames and typed messages as they arrive, until the `Summary` (then the iterator ends).

        A server `error` message raises ServerError; so does a close without one.
        """
        while True:
            try:
                message = await self.connection.recv()
            except ConnectionClosed as closed:
                if self.summary is not None:
                    return
                raise _closed_error(closed) from None
            if isinstance(message, bytes):
                yield Frame.parse(message)
                continue
            event = protocol.parse_server_message(message)
            if isinstance(event, protocol.Error):
                raise _server_error(event)
            yield event
            if isinstance(event, protocol.Summary):
                self.summary = event
                return

    async def close(self) -> None:
        """Close the connection at once (the server frees the stream slot)."""
        await self.connection.close()

    async def _send(self, message: protocol.Message) -> None:
        await self.connection.send(message.to_json())


class FlashheadClient:
    """Client for one server. `base_url` like http://127.0.0.1:8000; `token` for bearer auth."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 300.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> FlashheadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def health(self) -> bool:
        """True when the process is alive (GET /healthz answers 200)."""
        return (await self.http.get("/healthz")).status_code == 200

    async def ready(self) -> bool:
        """True when the model is loaded and warm: GET /readyz answers 200, or 503 `full` (warm, no room now)."""
        response = await self.http.get("/readyz")
        return response.status_code == 200 or (response.status_code == 503 and _status(response) == "full")

    async def wait_ready(self, timeout: float = 600.0, interval: float = 0.5) -> None:
        """Poll /readyz until ready; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if await self.ready():
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.base_url} not ready after {timeout:.0f} s")
            await asyncio.sleep(interval)

    async def info(self) -> dict[str, Any]:
        """GET /v1/info: backend, model type, versions, fps, size, chunk frames, capacity, streams."""
        return _json(await self.http.get("/v1/info"))

    async def metrics(self) -> str:
        """GET /metrics: the Prometheus text exposition."""
        response = await self.http.get("/metrics")
        _raise_for(response)
        return response.text

    async def create_avatar(self, image: BytesOrPath) -> str:
        """Upload a reference photo (PNG/JPEG/WebP/HEIC); returns the avatar id."""
        response = await self.http.post("/v1/avatars", files={"image": ("image", _read(image))})
        return str(_json(response)["avatar_id"])

    async def get_avatar(self, avatar_id: str) -> dict[str, Any]:
        return _json(await self.http.get(f"/v1/avatars/{avatar_id}"))

    async def list_avatars(self) -> list[dict[str, Any]]:
        return list(_json(await self.http.get("/v1/avatars"))["avatars"])

    async def delete_avatar(self, avatar_id: str) -> None:
        _raise_for(await self.http.delete(f"/v1/avatars/{avatar_id}"))

    async def generate(self, audio: BytesOrPath, *, avatar_id: str | None = None,
                       image: BytesOrPath | None = None, seed: int | None = None) -> bytes:
        """POST /v1/generate: audio file (+ avatar id or image) -> MP4 bytes."""
        files = {"audio": ("audio", _read(audio))}
        if image is not None:
            files["image"] = ("image", _read(image))
        data = {k: str(v) for k, v in {"avatar_id": avatar_id, "seed": seed}.items() if v is not None}
        response = await self.http.post("/v1/generate", data=data, files=files)
        _raise_for(response)
        return response.content

    async def stream(self, *, avatar_id: str | None = None, image: BytesOrPath | None = None,
                     sample_rate: int = 16000, channels: int = 1, output: str = "jpeg",
                     seed: int | None = None, idle_frames: bool | None = None,
                     version: int = protocol.VERSION) -> StreamSession:
        """Open WS /v1/stream and send `start`; returns the session once `ready` arrived.

        `version` is the protocol asked for (`ready.protocol` says what the server agreed to)."""
        photo = None if image is None else base64.b64encode(_read(image)).decode()
        start = protocol.Start(avatar_id=avatar_id, image=photo, sample_rate=sample_rate, channels=channels,
                               output=output, seed=seed, idle_frames=idle_frames, protocol=version)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        # No compression: frames are JPEG or raw RGB, and deflating them costs more than it saves.
        connection = await connect(self.ws_url, additional_headers=headers, max_size=None, compression=None,
                                   open_timeout=30, close_timeout=5)
        # A refusal (capacity, draining, auth) may close the connection before `start` is sent;
        # its typed error message is still buffered for recv.
        with contextlib.suppress(ConnectionClosed):
            await connection.send(start.to_json())
        try:
            message = await connection.recv()
        except ConnectionClosed as closed:
            raise _closed_error(closed) from None
        ready = protocol.parse_server_message(message) if isinstance(message, str) else None
        if not isinstance(ready, protocol.Ready):
            await connection.close()
            if isinstance(ready, protocol.Error):
                raise _server_error(ready)
            raise ServerError("protocol", f"expected `ready`, got {str(message)[:200]!r}")
        return StreamSession(connection, ready)

    async def stream_retrying(self, retry: RetryPolicy | None = None, *,
                              on_refusal: Callable[[BaseException, int], None] | None = None,
                              **start: Any) -> StreamSession:
        """`stream(**start)`, retried with backoff while servers refuse it for capacity (HTTP 503,
        close 1013): behind a Service the next try reaches a pod with room (inference/retry.py)."""
        return await retry_refused(lambda: self.stream(**start), retry or RetryPolicy(), on_refusal=on_refusal)

    async def stream_audio(self, pcm: bytes, *, sample_rate: int = 16000, channels: int = 1,
                           realtime: bool = False, packet_ms: int = 40, **start: Any) -> StreamResult:
        """Stream a whole PCM16 clip and collect every frame, stats message and the summary.

        `realtime=True` paces the audio at its own speed in `packet_ms` packets (as a live
        microphone would); otherwise it is sent as fast as the server accepts it.
        """
        session = await self.stream(sample_rate=sample_rate, channels=channels, **start)
        result = StreamResult(session.ready, [], [], [])
        rate = sample_rate * channels * 2
        sender = asyncio.create_task(_send_clip(session, pcm, rate, realtime, packet_ms))
        try:
            async for event in session.events():
                _collect(result, event)
            await sender
        finally:
            sender.cancel()
            await session.close()
        result.first_audio_at = session.first_audio_at
        result.first_frame_at = result.frames[0].received_at if result.frames else None
        return result

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.base_url.startswith("https") else "ws"
        return f"{scheme}{self.base_url[self.base_url.index(':'):]}/v1/stream"


async def _send_clip(session: StreamSession, pcm: bytes, bytes_per_second: int, realtime: bool,
                     packet_ms: int) -> None:
    step = max(2, bytes_per_second * packet_ms // 1000 // 2 * 2)
    started = time.monotonic()
    for offset in range(0, len(pcm), step):
        if realtime:
            due = started + offset / bytes_per_second
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await session.send_audio(pcm[offset:offset + step])
    await session.end()


def _collect(result: StreamResult, event: Frame | protocol.Message) -> None:
    if isinstance(event, Frame):
        result.frames.append(event)
    elif isinstance(event, protocol.Stats):
        result.stats.append(event)
    elif isinstance(event, protocol.Playback):
        result.playback.append(event)
    elif isinstance(event, protocol.Summary):
        result.summary = event


def _server_error(error: protocol.Error) -> ServerError:
    return ServerError(error.code, error.message, close_code=error.close_code, remedy=error.remedy)


def _closed_error(closed: ConnectionClosed) -> ServerError:
    """A close that came without an `error` message: the code the reason names, or the close code's meaning."""
    code = closed.rcvd.code if closed.rcvd else 1006
    error = protocol.error_from_close(code, closed.rcvd.reason if closed.rcvd else "")
    return ServerError(error.code, error.message, close_code=code)


def _read(value: BytesOrPath) -> bytes:
    return Path(value).read_bytes() if isinstance(value, Path) else value


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"code": "http", "message": response.text[:500]}
    retry = response.headers.get("retry-after")
    raise ServerError(body.get("code", "http"), body.get("message", response.reason_phrase),
                      status=response.status_code, retry_after=float(retry) if retry else None,
                      remedy=body.get("remedy"))


def _status(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None


def _json(response: httpx.Response) -> Any:
    _raise_for(response)
    return response.json()


__all__ = ["FlashheadClient", "Frame", "RetryPolicy", "ServerError", "StreamResult", "StreamSession", "websockets"]
