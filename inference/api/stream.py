"""WS /v1/stream: the real-time path (protocol in docs/protocol.md and inference/protocol.py).

A connection takes a stream slot at once (refused with close 1013 when none is free), waits for
`start`, answers `ready`, then runs three tasks: the reader turns PCM16 into model chunks
(backpressure: it stops reading while the stream's queue is full), the writer sends frames,
stats and acks in order, and an optional idler queues silence when the playback would run dry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from inference import protocol
from inference.api.stream_stats import StreamStats
from inference.api.uploads import decode_image
from inference.avatars import Avatar
from inference.errors import (
    BackendError,
    BadInput,
    InferenceError,
    Timeout,
    TooLarge,
    Unauthorized,
    UnsupportedMedia,
)
from inference.media import encode_jpeg
from inference.middleware import token_matches
from inference.protocol import FrameHeader
from inference.runtime import Runtime
from inference.scheduler import Frames
from inference.sessions import PcmInput, Session

log = logging.getLogger("inference.stream")


class ClientGone(Exception):
    """The client closed the connection."""


class ShuttingDown(InferenceError):
    status = 503
    code = "shutting_down"


async def stream(websocket: WebSocket) -> None:
    """Serve one WebSocket stream from accept to close."""
    await websocket.accept()
    await StreamConnection(websocket, websocket.app.state.runtime).run()


async def _outcome(work: Coroutine[Any, Any, object]) -> BaseException | None:
    """Run `work`; return its expected error without a traceback instead of raising it.

    A task that ends with an exception keeps it, and the traceback's frames keep the stream's
    frames (megabytes) alive in a reference cycle until the cyclic GC runs. Returning the error
    bare lets a dropped stream's memory go at once.
    """
    try:
        await work
    except (InferenceError, ClientGone, WebSocketDisconnect) as error:
        return error.with_traceback(None)
    return None


async def _supervise(tasks: set[asyncio.Task[BaseException | None]]) -> BaseException | None:
    """Wait until the writer finishes (None), a task fails (its error) or the server stops."""
    while True:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            tasks.discard(task)
            if task.get_name() == "stop":
                return ShuttingDown("the server is shutting down", "reconnect to continue")
            error = task.result()
            if error is not None or task.get_name() == "writer":
                return error


class StreamConnection:
    """One stream's protocol state machine; see the module docstring."""

    def __init__(self, websocket: WebSocket, rt: Runtime):
        self.ws = websocket
        self.rt = rt
        self.id = "st_" + uuid.uuid4().hex[:12]
        self.send_lock = asyncio.Lock()
        self.stop = asyncio.Event()
        self.session: Session | None = None
        self.pcm: PcmInput | None = None
        self.output = "jpeg"
        self.stats = StreamStats()
        self.ready_at = time.monotonic()
        self.ending = False

    async def run(self) -> None:
        avatar: Avatar | None = None
        # A client that authenticated by header is refused at once when the server is full; one that
        # sends its token in `start` gets a slot only after that token checks out, so anonymous
        # connections never hold slots.
        early = not self.rt.config.api_token or bool(self.ws.scope.get("flashhead.authorized"))
        holds_slot = False
        try:
            if early:
                self.rt.acquire_slot("stream")
                holds_slot = True
        except InferenceError as error:
            await self.fail(error)
            return
        self.rt.shutdown_hooks.add(self.stop.set)
        try:
            start = await self.read_start()
            if not holds_slot:
                self.rt.acquire_slot("stream")
                holds_slot = True
            avatar = await self.avatar(start)
            self.rt.avatars.acquire(avatar)
            await self.open(start, avatar)
            await self.serve(start)
        except InferenceError as error:
            await self.fail(error)
        except (ClientGone, WebSocketDisconnect):
            log.info("client left", extra={"stream": self.id, "frames": self.stats.frames_sent})
        except Exception:  # noqa: BLE001 - a bug or a backend crash: typed error to the client, trace to the log
            log.exception("stream failed", extra={"stream": self.id})
            await self.fail(InferenceError("internal server error", "see the server log; retry the stream"))
        finally:
            if self.session:
                self.session.close()
            if avatar:
                self.rt.avatars.done(avatar)
            if holds_slot:
                self.rt.release_slot()
            self.rt.shutdown_hooks.discard(self.stop.set)

    async def read_start(self) -> protocol.StartRequest:
        try:
            message = await asyncio.wait_for(self.receive(), timeout=self.rt.config.ready_timeout_s)
        except asyncio.TimeoutError:  # not the builtin before Python 3.11
            raise Timeout("no `start` message in time", "send `start` right after connecting") from None
        if "text" not in message or message["text"] is None:
            raise UnsupportedMedia("the first message must be a JSON `start`", "send `start`, then binary audio")
        data = self.parse_json(message["text"])
        if data.get("type") != protocol.START:
            raise BadInput(f"expected `start`, got {str(data.get('type'))[:40]!r}", "send `start` first")
        try:
            start = protocol.parse_start(data)
        except ValueError as error:
            raise BadInput(str(error), "see docs/protocol.md for the `start` fields") from None
        self.authorize(start.token)
        return start

    def authorize(self, token_in_start: str | None) -> None:
        expected = self.rt.config.api_token
        if not expected or self.ws.scope.get("flashhead.authorized"):
            return
        if token_matches(token_in_start, expected):
            return
        raise Unauthorized("missing or wrong bearer token",
                           "send `Authorization: Bearer <FLASHHEAD_API_TOKEN>` or `token` in `start`")

    async def avatar(self, start: protocol.StartRequest) -> Avatar:
        if start.avatar_id is not None:
            return self.rt.avatars.get(start.avatar_id)
        try:
            data = base64.b64decode(start.image_b64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise BadInput("`image` is not valid base64", "base64-encode the photo's file bytes") from None
        async with self.rt.upload_slot():
            image = await decode_image(self.rt, data)
        return await self.rt.prepare_avatar(image)

    async def open(self, start: protocol.StartRequest, avatar: Avatar) -> None:
        config = self.rt.config
        seed = config.seed if start.seed is None else start.seed
        quality = config.jpeg_quality if start.output == "jpeg" else None
        lane = await self.rt.scheduler.open_lane(avatar.state, seed, config.max_queued_chunks, quality)
        self.session = Session(self.rt.scheduler, lane, self.rt.geometry)
        self.pcm = PcmInput(start.sample_rate, start.channels)
        self.output = start.output
        geometry = self.rt.geometry
        await self.send_json({"type": protocol.READY, "stream_id": self.id, "fps": geometry.fps,
                              "width": geometry.width, "height": geometry.height,
                              "chunk_frames": geometry.new_frames, "chunk_seconds": geometry.chunk_seconds,
                              "sample_rate": start.sample_rate, "channels": start.channels,
                              "model_sample_rate": geometry.sample_rate, "output": start.output,
                              "avatar_id": avatar.id, "protocol": protocol.VERSION})
        self.ready_at = time.monotonic()

    async def serve(self, start: protocol.StartRequest) -> None:
        idle = self.rt.config.idle_frames if start.idle_frames is None else start.idle_frames
        tasks = {asyncio.create_task(_outcome(self.read_loop()), name="reader"),
                 asyncio.create_task(_outcome(self.write_loop()), name="writer"),
                 asyncio.create_task(_outcome(self.stop.wait()), name="stop")}
        if idle:
            tasks.add(asyncio.create_task(_outcome(self.idle_loop()), name="idler"))
        try:
            error = await _supervise(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks.clear()
        if error is not None:
            try:
                raise error
            finally:
                error = None  # no frame -> exception -> traceback -> frame cycle holding the stream

    async def read_loop(self) -> None:
        assert self.session and self.pcm
        while True:
            message = await self.receive()
            if message.get("bytes") is not None:
                await self.on_audio(message["bytes"])
                continue
            data = self.parse_json(message.get("text") or "")
            kind = data.get("type")
            if kind == protocol.SEGMENT_END:
                await self.end_segment()
            elif kind == protocol.INTERRUPT:
                self.session.interrupt()
                self.pcm.reset()
                await self.send_playback("interrupted")
            elif kind == protocol.END:
                self.ending = True
                await self.end_segment()
                await self.session.wait_drained()
                self.session.lane.outbox.put_nowait(None)  # type: ignore[arg-type]
                return
            elif kind == protocol.START:
                raise BadInput("the stream has already started", "open a new connection for a new stream")
            else:
                raise BadInput(f"unknown message type {str(kind)[:40]!r}",
                               f"use one of: {', '.join(protocol.CLIENT_TYPES)}")

    async def on_audio(self, pcm: bytes) -> None:
        assert self.session and self.pcm
        if len(pcm) > self.rt.config.max_message_bytes:
            raise TooLarge(f"an audio message of {len(pcm)} bytes exceeds {self.rt.config.max_message_bytes}",
                           "send smaller packets (20-100 ms each is typical)")
        if self.stats.first_audio_at is None and pcm:
            self.stats.first_audio_at = time.monotonic()
        await self.session.push(self.pcm.push(pcm))

    async def end_segment(self) -> None:
        assert self.session and self.pcm
        await self.session.push(self.pcm.end_segment())
        if self.session.pending.size or self.session.segment_samples:
            await self.session.flush()

    async def write_loop(self) -> None:
        assert self.session
        while True:
            result = await self.session.next_result()
            if result is None:
                summary = self.summary()
                await self.send_json(summary)
                await self.ws.close(protocol.CloseCode.NORMAL)
                log.info("stream done", extra={k: v for k, v in summary.items() if k != "type"})
                return
            if result.error is not None or result.frames is None:
                raise BackendError(f"the backend failed: {result.error}", "see the server log")
            await self.send_chunk(result)

    async def send_chunk(self, result: Any) -> None:
        assert self.session
        epoch, fps = result.job.epoch, self.rt.geometry.fps
        if result.job.samples is None:  # a segment-end marker: nothing was generated
            await self.segment_done()
            return
        started, sent = time.perf_counter(), 0
        async for payload in self.encoded(result.frames):
            async with self.send_lock:  # index, epoch check and count agree with any ack sent meanwhile
                if epoch != self.session.lane.epoch:
                    return  # interrupted: the rest of this chunk is dropped
                header = FrameHeader(self.stats.frames_sent, result.index, round(self.stats.frames_sent * 1e6 / fps),
                                     self.output)
                await self.ws.send_bytes(header.pack() + payload)
                self.stats.frames_sent += 1
            sent += 1
            if self.stats.first_frame_at is None:
                self.stats.first_frame_at = time.monotonic()
                if self.stats.ttff_s is not None:
                    self.rt.metrics.ttff.observe(self.stats.ttff_s)
        self.rt.metrics.frames.labels("idle" if result.job.idle else "stream").inc(sent)
        self.stats.chunk_sent(result.generation_s, result.queue_s, result.job.idle)
        await self.send_json({"type": protocol.STATS, "chunk": result.index, "frames": sent,
                              "first_frame": self.stats.frames_sent - sent, "idle": result.job.idle,
                              "generation_ms": round(result.generation_s * 1000, 2),
                              "queue_ms": round(result.queue_s * 1000, 2),
                              "send_ms": round((time.perf_counter() - started) * 1000, 2),
                              "batch_size": result.batch_size})
        if result.job.segment_end:
            await self.segment_done()

    async def segment_done(self) -> None:
        await self.send_playback("segment_done")

    async def send_playback(self, event: str) -> None:
        """A `playback` ack; its position counts exactly the frames sent before it."""
        async with self.send_lock:
            await self.ws.send_text(json.dumps({
                "type": protocol.PLAYBACK, "event": event, "interrupted": event == "interrupted",
                "position": self.stats.frames_sent / self.rt.geometry.fps, "frames_sent": self.stats.frames_sent}))

    async def idle_loop(self) -> None:
        """Queue a chunk of silence whenever less than one chunk of frames is ahead of playback."""
        assert self.session
        geometry = self.rt.geometry
        while not self.ending:
            playing_since = self.stats.first_frame_at or time.monotonic()
            due = (time.monotonic() - playing_since) * geometry.fps
            ahead = self.stats.frames_sent - due
            quiet = time.monotonic() - self.session.last_audio_at > geometry.chunk_seconds
            if quiet and not self.session.lane.busy and self.session.pending.size == 0 and ahead < geometry.new_frames:
                await self.session.push_idle()
            await asyncio.sleep(geometry.chunk_seconds / 4)

    async def encoded(self, frames: Frames) -> AsyncIterator[bytes]:
        """The chunk's frames encoded in parallel threads, yielded in order as each is ready.

        One JPEG takes 1.6-3.3 ms of CPU at 512x512; one at a time, a 24-frame chunk spent up to
        80 ms here. Pillow releases the GIL while encoding, so the chunk's frames encode side by side.
        Frames the backend already encoded on its device pass through.
        """
        if isinstance(frames, list):
            for payload in frames:
                yield payload
            return
        tasks = [asyncio.ensure_future(self.encode(frame)) for frame in frames]
        try:
            for task in tasks:
                yield await task
        finally:
            for task in tasks:
                task.cancel()

    async def encode(self, frame: np.ndarray) -> bytes:
        if self.output == "rgb":
            return frame.tobytes()
        return await asyncio.to_thread(encode_jpeg, frame, self.rt.config.jpeg_quality)

    def summary(self) -> dict[str, Any]:
        assert self.session
        audio_seconds = self.session.audio_samples / self.rt.geometry.sample_rate
        return {"type": protocol.SUMMARY, "stream_id": self.id,
                **self.stats.summary(self.rt.geometry.fps, audio_seconds, self.session.interrupts)}

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise ClientGone
        return dict(message)

    def parse_json(self, text: str) -> dict[str, Any]:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise BadInput("a text message is not valid JSON", "send JSON objects with a `type`") from None
        if not isinstance(data, dict):
            raise BadInput("a text message must be a JSON object", "send JSON objects with a `type`")
        return data

    async def send_json(self, data: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(data))

    async def fail(self, error: InferenceError) -> None:
        """Send a typed error, then close with the matching code; quiet if the client is gone."""
        self.rt.metrics.errors.labels(error.code).inc()
        log.info("stream error", extra={"stream": self.id, "code": error.code, "error": error.message})
        close_code = protocol.ERROR_CLOSE_CODES.get(error.code, protocol.CloseCode.INTERNAL)
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(Exception):
            await self.send_json({"type": protocol.ERROR, **error.to_dict()})
            await self.ws.close(close_code, reason=error.message.encode()[:120].decode(errors="ignore"))
