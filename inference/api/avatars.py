"""POST/GET/DELETE /v1/avatars: reference photos prepared once by the backend."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from inference.api.health import runtime
from inference.api.uploads import decode_image, file_bytes, read_form
from inference.avatars import avatar_id
from inference.errors import NotReady


async def create(request: Request) -> JSONResponse:
    """Upload `image` (multipart); 201 with the avatar id (200 if the same photo exists)."""
    rt = runtime(request)
    if not rt.ready:
        raise NotReady("the model is not ready yet", "wait until GET /readyz answers 200")
    async with rt.upload_slot(), read_form(request, rt) as form:
        image = await decode_image(rt, await file_bytes(form, "image") or b"")
    existed = avatar_id(image.pixels) in rt.avatars.items
    avatar = await rt.prepare_avatar(image)
    status = 200 if existed else 201
    return JSONResponse(avatar.describe(), status_code=status)


async def list_all(request: Request) -> JSONResponse:
    return JSONResponse({"avatars": runtime(request).avatars.list()})


async def get(request: Request) -> JSONResponse:
    return JSONResponse(runtime(request).avatars.get(request.path_params["avatar_id"]).describe())


async def delete(request: Request) -> Response:
    runtime(request).avatars.delete(request.path_params["avatar_id"])
    return Response(status_code=204)
