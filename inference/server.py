"""Run the app under uvicorn with a graceful SIGTERM drain.

First SIGTERM/SIGINT: /readyz turns 503, new streams are refused, running streams get
`grace_seconds` to finish, the rest are ended with close 1001 "server shutting down"; then the
server exits 0. A second signal exits at once. A model that fails to load exits 1 with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from inference import memory
from inference.app import create_app
from inference.backends import create_backend
from inference.config import ServerConfig
from inference.connection_guard import guarded
from inference.errors import InferenceError
from inference.logs import configure
from inference.runtime import Runtime

log = logging.getLogger("inference.server")
# The server runs torch alone. transformers and diffusers (FlashHead's imports) otherwise import JAX and
# look for TensorFlow wherever they are installed beside it: JAX took 1.3 s of each start on the H200 image.
TORCH_ONLY = {"USE_TF": "0", "USE_FLAX": "0"}


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first exit signal drains streams before shutting down."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime, grace_seconds: float):
        super().__init__(config)
        self.runtime = runtime
        self.grace_seconds = grace_seconds
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining = False
        self.exit_code = 0
        runtime.on_fatal = self.fatal

    async def serve(self, sockets: list | None = None) -> None:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining or self.loop is None:
            self.should_exit = True
            self.force_exit = self.draining and sig == signal.SIGINT
            return
        self.draining = True
        log.info("draining", extra={"signal": signal.Signals(sig).name, "grace_s": self.grace_seconds})
        self.loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        assert self.loop
        self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        await self.runtime.drain(self.grace_seconds)
        self.should_exit = True

    def fatal(self, error: InferenceError) -> None:
        self.exit_code = 1
        self.should_exit = True


def uvicorn_config(app: Any, config: ServerConfig) -> uvicorn.Config:
    """uvicorn's settings. WebSocket compression is off: frames are JPEG (or raw RGB), which deflate
    cannot shrink, and compressing them ran on the event loop at ~10 ms a frame, capping every
    stream together at ~90 FPS (measured on the H200). Connections get a request-head deadline and
    a cap (inference/connection_guard.py), a keep-alive timeout and a 16 KiB limit on a request head."""
    http = guarded(import_from_string(HTTP_PROTOCOLS["auto"]), config.header_timeout_s, config.max_connections)
    return uvicorn.Config(app, host=config.host, port=config.port, log_config=None, lifespan="on", http=http,
                          ws_max_size=config.max_message_bytes + 1024, ws_per_message_deflate=False,
                          timeout_keep_alive=config.keep_alive_s, h11_max_incomplete_event_size=16 * 1024,
                          timeout_graceful_shutdown=5, server_header=False, access_log=True)


def run(config: ServerConfig) -> int:
    """Serve until a signal; returns the process exit status. Raises InferenceError on bad set-up."""
    configure(config.log_level, config.log_format)
    memory.limit_arenas()
    memory.release_large_buffers_eagerly()
    for name, value in TORCH_ONLY.items():
        os.environ.setdefault(name, value)  # before the model thread imports FlashHead; an operator's value wins
    backend = create_backend(config)  # validates paths now, before binding the port
    app = create_app(config, backend)
    server = DrainingServer(uvicorn_config(app, config), app.state.runtime, config.grace_seconds)
    server.run()
    if not server.started and server.exit_code == 0:
        return 1
    return server.exit_code
