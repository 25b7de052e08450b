"""Reading uploads: the whole body first (with a timeout between pieces and an overall deadline),
then the multipart form from memory, then decoding in the media workers.

The body's size is capped by the BodyLimit middleware; how many bodies are read and decoded at
once by `Runtime.upload_slot` (FLASHHEAD_MAX_UPLOADS). A request takes a stream slot only after
all of this succeeded, so a slow or broken upload never holds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import numpy as np
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from inference import media
from inference.errors import BadInput, Timeout
from inference.media import DecodedImage
from inference.runtime import Runtime

MAX_FORM_FIELD_BYTES = 64 * 1024  # text fields (avatar_id, seed); files are bounded by the body limit


async def read_body(request: Request, rt: Runtime) -> bytes:
    """The whole request body, or Timeout (408) naming the limit that ran out."""
    config = rt.config
    deadline = time.monotonic() + config.body_deadline_s
    parts: list[bytes] = []
    stream = request.stream().__aiter__()
    while True:
        left = deadline - time.monotonic()
        wait = min(config.body_timeout_s, left)
        try:
            part = await asyncio.wait_for(stream.__anext__(), timeout=max(0.0, wait))
        except StopAsyncIteration:
            return b"".join(parts)
        except asyncio.TimeoutError:  # not the builtin before Python 3.11
            if wait < config.body_timeout_s:
                raise Timeout(f"the request body did not arrive within {config.body_deadline_s:g} s "
                              "(FLASHHEAD_BODY_DEADLINE_S)", "upload from a faster connection or send a smaller "
                              "file") from None
            raise Timeout(f"no part of the request body arrived for {config.body_timeout_s:g} s "
                          "(FLASHHEAD_BODY_TIMEOUT_S)", "send the whole body without pauses") from None
        except ClientDisconnect:
            raise BadInput("the client closed the connection during the upload", "send the request again") from None
        parts.append(part)


@contextlib.asynccontextmanager
async def read_form(request: Request, rt: Runtime) -> AsyncIterator[FormData]:
    """Read the body (see `read_body`), then parse it as multipart/form-data; its files close on exit."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise BadInput("expected a multipart/form-data upload", "send the file as a form field (curl -F)")
    body = await read_body(request, rt)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=2, max_fields=8,
                                                         max_part_size=MAX_FORM_FIELD_BYTES)
    except Exception as error:  # noqa: BLE001 - the multipart parser raises several types
        raise BadInput(f"the upload could not be parsed: {error}", "send a valid multipart/form-data body") \
            from None
    try:
        yield form
    finally:
        await form.close()


async def file_bytes(form: FormData, name: str, required: bool = True) -> bytes | None:
    value = form.get(name)
    if value is None:
        if required:
            raise BadInput(f"the form has no `{name}` file", f"add it: curl -F {name}=@FILE")
        return None
    if not isinstance(value, UploadFile):
        raise BadInput(f"`{name}` must be a file upload, not a text field", f"use curl -F {name}=@FILE")
    return await value.read()


async def decode_image(rt: Runtime, data: bytes) -> DecodedImage:
    """Decode a photo in a media worker (bounded size, memory and time)."""
    return await rt.media.run(media.decode_image, data, rt.image_limits)


async def decode_audio(rt: Runtime, data: bytes) -> np.ndarray:
    """Decode an audio file to 16 kHz mono float32 in a media worker (bounded length, memory and time)."""
    return await rt.media.run(media.decode_audio, data, rt.audio_limits)
