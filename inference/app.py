"""The ASGI app factory: config in, app out. Importing this module starts nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from inference.api import routes
from inference.backends.base import Backend
from inference.config import ServerConfig
from inference.errors import AtCapacity, InferenceError
from inference.middleware import BearerAuth, BodyLimit
from inference.runtime import Runtime

log = logging.getLogger("inference.app")


def create_app(config: ServerConfig, backend: Backend | None = None) -> Starlette:
    """Build the server for `config` (the backend is constructed now and loaded at start-up)."""
    runtime = Runtime(config, backend)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        log.info("server started", extra={"config": config.public()})
        try:
            yield
        finally:
            await runtime.stop()

    body_limit = config.max_image_bytes + config.max_audio_bytes + 64 * 1024
    app = Starlette(
        routes=routes(config.live_view),
        middleware=[Middleware(BearerAuth, token=config.api_token), Middleware(BodyLimit, limit=body_limit)],
        exception_handlers={InferenceError: _error_response, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    """Anything unexpected: the traceback goes to the log, the client gets a typed 500."""
    log.error("request failed: %s %s", request.method, request.url.path, exc_info=error)
    request.app.state.runtime.metrics.errors.labels("internal").inc()
    body = InferenceError("internal server error", "see the server log; retry the request").to_dict()
    return JSONResponse(body, status_code=500)


async def _error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, InferenceError)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, AtCapacity) else None
    if error.status == 503 and headers is None:
        headers = {"Retry-After": "5"}
    request.app.state.runtime.metrics.errors.labels(error.code).inc()
    return JSONResponse(error.to_dict(), status_code=error.status, headers=headers)
