"""WS /v1/stream: the connection and its supervisor (protocol in docs/protocol.md and inference/protocol.py).

A client authenticated by header takes a stream slot at once (refused with close 1013 when none
is free); one that sends its token in `start` takes a slot only once the token checks out. The
`start` must come within FLASHHEAD_READY_TIMEOUT_S, and a shutdown ends the wait at once. After
`ready`, the supervisor runs the input side (stream_input.py), the output side and the idler
(stream_output.py) until the output ends, one of them fails, or the server stops (`shutting_down`,
close 1001); then it cleans up the session, the avatar and the slot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from inference import protocol
from inference.api.stream_input import AudioInput
from inference.api.stream_output import FrameOutput
from inference.api.stream_wire import ClientGone, StreamWire
from inference.api.uploads import decode_image
from inference.avatars import Avatar
from inference.errors import BadInput, InferenceError, Timeout, Unauthorized, UnsupportedMedia
from inference.middleware import token_matches
from inference.runtime import Runtime
from inference.sessions import PcmInput, Session

log = logging.getLogger("inference.stream")


class ShuttingDown(InferenceError):
    status = 503
    code = "shutting_down"


def _shutting_down() -> ShuttingDown:
    return ShuttingDown("the server is shutting down", "reconnect to continue")


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
    """Wait until the output finishes (None), a task fails (its error) or the server stops."""
    while True:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            tasks.discard(task)
            if task.get_name() == "stop":
                return _shutting_down()
            error = task.result()
            if error is not None or task.get_name() == "output":
                return error


class StreamConnection:
    """One stream from accept to close; see the module docstring."""

    def __init__(self, websocket: WebSocket, rt: Runtime):
        self.ws = websocket
        self.wire = StreamWire(websocket)
        self.rt = rt
        self.id = "st_" + uuid.uuid4().hex[:12]
        self.stop = asyncio.Event()
        self.session: Session | None = None
        self.output: FrameOutput | None = None

    async def run(self) -> None:
        avatar: Avatar | None = None
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
            frames = self.output.stats.frames_sent if self.output else 0
            log.info("client left", extra={"stream": self.id, "frames": frames})
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

    async def read_start(self) -> protocol.Start:
        """The `start` message, within FLASHHEAD_READY_TIMEOUT_S; a shutdown meanwhile ends the wait."""
        receive = asyncio.ensure_future(self.wire.receive())
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({receive, stopped}, timeout=self.rt.config.ready_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not receive.done():
                receive.cancel()
        if receive not in done:
            if stopped in done:
                raise _shutting_down()
            raise Timeout(f"no `start` message within {self.rt.config.ready_timeout_s:g} s "
                          "(FLASHHEAD_READY_TIMEOUT_S)", "send `start` right after connecting")
        message = receive.result()
        if message.get("text") is None:
            raise UnsupportedMedia("the first message must be a JSON `start`", "send `start`, then binary audio")
        start = self.wire.parse(message["text"])
        if not isinstance(start, protocol.Start):
            raise BadInput(f"expected `start`, got `{start.TYPE}`", "send `start` first")
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

    async def avatar(self, start: protocol.Start) -> Avatar:
        if start.avatar_id is not None:
            return self.rt.avatars.get(start.avatar_id)
        try:
            data = base64.b64decode(start.image or "", validate=True)
        except (binascii.Error, ValueError):
            raise BadInput("`image` is not valid base64", "base64-encode the photo's file bytes") from None
        async with self.rt.upload_slot():
            image = await decode_image(self.rt, data)
        return await self.rt.prepare_avatar(image)

    async def open(self, start: protocol.Start, avatar: Avatar) -> None:
        config, geometry = self.rt.config, self.rt.geometry
        seed = config.seed if start.seed is None else start.seed
        quality = config.jpeg_quality if start.output == "jpeg" else None
        lane = await self.rt.scheduler.open_lane(avatar.state, seed, config.max_queued_chunks, quality)
        self.session = Session(self.rt.scheduler, lane, geometry, start.sample_rate)
        self.output = FrameOutput(self.wire, self.rt, self.session, self.id, start.output, start.agreed_protocol)
        await self.wire.send(protocol.Ready(
            stream_id=self.id, fps=geometry.fps, width=geometry.width, height=geometry.height,
            chunk_frames=geometry.new_frames, chunk_seconds=geometry.chunk_seconds, sample_rate=start.sample_rate,
            channels=start.channels, model_sample_rate=geometry.sample_rate, output=start.output,
            avatar_id=avatar.id, protocol=start.agreed_protocol, instance=self.rt.instance))

    async def serve(self, start: protocol.Start) -> None:
        assert self.session and self.output
        idle = self.rt.config.idle_frames if start.idle_frames is None else start.idle_frames
        reader = AudioInput(self.wire, self.session, PcmInput(start.sample_rate, start.channels), self.output,
                            self.rt.config.max_message_bytes)
        tasks = {asyncio.create_task(_outcome(reader.run()), name="input"),
                 asyncio.create_task(_outcome(self.output.run()), name="output"),
                 asyncio.create_task(_outcome(self.stop.wait()), name="stop")}
        if idle:
            tasks.add(asyncio.create_task(_outcome(self.output.idle()), name="idler"))
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

    async def fail(self, error: InferenceError) -> None:
        """Send a typed error, then close with the matching code; quiet if the client is gone."""
        self.rt.metrics.errors.labels(error.code).inc()
        log.info("stream error", extra={"stream": self.id, "code": error.code, "error": error.message})
        await self.wire.fail(error)
