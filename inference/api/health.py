"""Liveness, readiness (model loaded and warm) and Prometheus metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from inference.runtime import Runtime

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def live(request: Request) -> JSONResponse:
    """200 while the process serves HTTP."""
    return JSONResponse({"status": "alive"})


async def ready(request: Request) -> JSONResponse:
    """200 once the model is warm; 503 while loading, after a load failure, or while draining."""
    rt = runtime(request)
    if rt.ready and not rt.draining:
        return JSONResponse({"status": "ready", "active_streams": rt.active})
    if rt.load_error:
        return JSONResponse({"status": "failed", **rt.load_error.to_dict()}, status_code=503)
    return JSONResponse({"status": "draining" if rt.draining else "loading"}, status_code=503)


async def metrics(request: Request) -> Response:
    return Response(runtime(request).metrics.render(), media_type=PROMETHEUS_TEXT)
