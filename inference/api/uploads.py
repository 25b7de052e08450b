"""Reading multipart uploads with limits (the body size itself is capped by BodyLimit)."""

from __future__ import annotations

import asyncio

import numpy as np
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from inference import media
from inference.errors import BadInput
from inference.runtime import Runtime


async def read_form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise BadInput("expected a multipart/form-data upload", "send the file as a form field (curl -F)")
    try:
        return await request.form(max_files=2, max_fields=8, max_part_size=64 * 1024)
    except BadInput:
        raise
    except Exception as error:  # noqa: BLE001 - the multipart parser raises several types
        raise BadInput(f"the upload could not be parsed: {error}", "send a valid multipart/form-data body") \
            from None


async def file_bytes(form: FormData, name: str, required: bool = True) -> bytes | None:
    value = form.get(name)
    if value is None:
        if required:
            raise BadInput(f"the form has no `{name}` file", f"add it: curl -F {name}=@FILE")
        return None
    if not isinstance(value, UploadFile):
        raise BadInput(f"`{name}` must be a file upload, not a text field", f"use curl -F {name}=@FILE")
    return await value.read()


async def decode_image(rt: Runtime, data: bytes) -> np.ndarray:
    config = rt.config
    return await asyncio.to_thread(media.decode_image, data, config.max_image_bytes, config.max_image_pixels)


async def decode_audio(rt: Runtime, data: bytes) -> np.ndarray:
    config = rt.config
    return await asyncio.to_thread(media.decode_audio, data, config.max_audio_bytes, config.max_audio_seconds)
