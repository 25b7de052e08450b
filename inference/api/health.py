"""Probes and Prometheus metrics. Three questions, kept apart (docs/deploy.md, "Routing"):

- alive (`/livez`, `/healthz`): the process serves HTTP — the liveness probe;
- warm (`/startupz`, `/v2/health/ready`): the model is loaded and warmed up — the startup probe;
- room (`/readyz`): warm, not draining, and one more stream fits — the readiness probe, so a full
  pod leaves the Service's endpoints and new streams go to pods with room. Streams already running
  are never affected by it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from inference.runtime import Runtime

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def live(request: Request) -> JSONResponse:
    """200 while the process serves HTTP."""
    return JSONResponse({"status": "alive"})


async def warm(request: Request) -> JSONResponse:
    """200 once the model is warm, however busy; 503 while loading, after a load failure or while draining."""
    rt = runtime(request)
    if rt.ready and not rt.draining:
        return JSONResponse({"status": "warm", **_load(rt)})
    return _not_serving(rt)


async def ready(request: Request) -> JSONResponse:
    """200 while one more stream would be admitted; 503 `full` at capacity (and while not warm)."""
    rt = runtime(request)
    if not rt.ready or rt.draining:
        return _not_serving(rt)
    if rt.active >= rt.stream_limit():
        return JSONResponse({"status": "full", **_load(rt)}, status_code=503)
    return JSONResponse({"status": "ready", **_load(rt)})


async def metrics(request: Request) -> Response:
    return Response(runtime(request).metrics.render(), media_type=PROMETHEUS_TEXT)


def _load(rt: Runtime) -> dict[str, Any]:
    return {"active_streams": rt.active, "stream_capacity": rt.stream_limit(), "instance": rt.instance}


def _not_serving(rt: Runtime) -> JSONResponse:
    if rt.load_error:
        return JSONResponse({"status": "failed", **rt.load_error.to_dict()}, status_code=503)
    return JSONResponse({"status": "draining" if rt.draining else "loading", **_load(rt)}, status_code=503)
