"""POST /v1/generate: an audio file and an avatar (id or photo) -> an MP4 of the talking head.

The whole body is read, parsed and decoded first (an upload slot, media workers); only then does
the request take a stream slot like a WebSocket stream, and go through the same scheduler, so it
shares the model fairly. Frames are encoded into the MP4 chunk by chunk (bounded memory); after a
large request the heap is trimmed once the response is sent.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from inference import memory
from inference.api.health import runtime
from inference.api.uploads import decode_audio, decode_image, file_bytes, read_form
from inference.avatars import Avatar
from inference.errors import BackendError, BadInput
from inference.media import DecodedImage, Mp4Writer
from inference.runtime import Runtime
from inference.sessions import Session


async def generate(request: Request) -> Response:
    """Multipart fields: `audio` (file), and `avatar_id` (text) or `image` (file); optional `seed`."""
    rt = runtime(request)
    rt.check_admission("generate")  # a full or draining server refuses before reading the body
    async with rt.upload_slot(), read_form(request, rt) as form:
        photo = await _photo(rt, form)  # an unknown avatar id fails before the audio is decoded
        audio = await decode_audio(rt, await file_bytes(form, "audio") or b"")
        seed = _seed(form, rt.config.seed)
    rt.acquire_slot("generate")
    try:
        avatar = rt.avatars.get(photo) if isinstance(photo, str) else await rt.prepare_avatar(photo)
        rt.avatars.acquire(avatar)
        try:
            video = await _render(rt, avatar, audio, seed, request)
        finally:
            rt.avatars.done(avatar)
    finally:
        rt.release_slot()
    frames = math.ceil(audio.size / rt.geometry.samples_per_frame)
    headers = {"X-Frames": str(frames), "X-Audio-Seconds": f"{audio.size / rt.geometry.sample_rate:.3f}"}
    large = audio.nbytes + len(video) >= memory.LARGE_REQUEST_BYTES
    return Response(video, media_type="video/mp4", headers=headers,
                    background=BackgroundTask(memory.trim) if large else None)


async def _photo(rt: Runtime, form: FormData) -> str | DecodedImage:
    """The avatar id (checked now) or the decoded photo."""
    avatar_id = form.get("avatar_id")
    has_image = form.get("image") is not None
    if (avatar_id is None) == (not has_image):
        raise BadInput("send exactly one of `avatar_id` or `image`", "upload the photo once with POST /v1/avatars")
    if avatar_id is not None:
        return rt.avatars.get(str(avatar_id)).id
    return await decode_image(rt, await file_bytes(form, "image") or b"")


def _seed(form: FormData, default: int) -> int:
    raw = form.get("seed")
    if raw is None:
        return default
    try:
        seed = int(str(raw))
    except ValueError:
        raise BadInput(f"`seed` {str(raw)[:40]!r} is not an integer", "send a non-negative integer") from None
    if not 0 <= seed < 2**63:
        raise BadInput("`seed` is out of range", "send a non-negative integer below 2**63")
    return seed


async def _render(rt: Runtime, avatar: Avatar, audio: np.ndarray, seed: int, request: Request) -> bytes:
    geometry = rt.geometry
    lane = await rt.scheduler.open_lane(avatar.state, seed, rt.config.max_queued_chunks)
    session = Session(rt.scheduler, lane, geometry)
    writer = Mp4Writer(geometry.fps, geometry.width, geometry.height, geometry.sample_rate)
    feeder = asyncio.create_task(_feed(session, audio))
    try:
        total = math.ceil(audio.size / geometry.samples_per_frame)
        done, offset = 0, 0
        while done < total:
            result = await session.next_result()
            if result is None or result.error is not None or result.frames is None:
                raise BackendError(f"the backend failed: {result and result.error}", "see the server log")
            assert isinstance(result.frames, np.ndarray)  # the lane asked for RGB frames (no JPEG quality)
            span = audio[offset: offset + len(result.frames) * geometry.samples_per_frame]
            await asyncio.to_thread(writer.add, result.frames, span)
            offset += span.size
            done += len(result.frames)
            rt.metrics.frames.labels("generate").inc(len(result.frames))
            if await request.is_disconnected():
                raise asyncio.CancelledError
        await feeder
        return await asyncio.to_thread(writer.finish)
    finally:
        feeder.cancel()
        session.close()
        await asyncio.to_thread(writer.discard)


async def _feed(session: Session, audio: np.ndarray) -> None:
    step = session.geometry.samples_per_chunk
    for start in range(0, audio.size - audio.size % step, step):
        await session.push(audio[start: start + step])
    remainder = audio.size % step
    if remainder:
        await session.push(audio[audio.size - remainder:])
        await session.flush()
