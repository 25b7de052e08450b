"""GET /v1/info: backend, model, versions, geometry, capacity and load."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from inference.api.health import runtime


async def info(request: Request) -> JSONResponse:
    return JSONResponse(runtime(request).info())
