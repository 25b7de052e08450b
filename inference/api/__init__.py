"""HTTP and WebSocket endpoints, one module per group; `routes()` lists them all."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, WebSocketRoute

from inference.api import avatars, generate, health, info, live, stream


def routes(live_view: bool = False) -> list[BaseRoute]:
    """Every endpoint; the browser live view (/live) only when it is turned on."""
    pages: list[BaseRoute] = [Route("/live", live.page), Route("/live/{name}", live.page)] if live_view else []
    return pages + [
        Route("/healthz", health.live),
        Route("/livez", health.live),
        Route("/startupz", health.warm),
        Route("/readyz", health.ready),
        Route("/v2/health/live", health.live),
        Route("/v2/health/ready", health.warm),
        Route("/metrics", health.metrics),
        Route("/v1/info", info.info),
        Route("/v1/avatars", avatars.create, methods=["POST"]),
        Route("/v1/avatars", avatars.list_all, methods=["GET"]),
        Route("/v1/avatars/{avatar_id}", avatars.get, methods=["GET"]),
        Route("/v1/avatars/{avatar_id}", avatars.delete, methods=["DELETE"]),
        Route("/v1/generate", generate.generate, methods=["POST"]),
        WebSocketRoute("/v1/stream", stream.stream),
    ]
