"""The server's state: config, backend, scheduler, avatar cache, metrics, stream slots, drain.

One `Runtime` per app, created by `create_app` and started/stopped by the app's lifespan.
The model is loaded in the background after start-up so /healthz answers at once and /readyz
turns true when the model is warm; a load failure is logged with its remedy and stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from inference import __version__, protocol
from inference.avatars import Avatar, AvatarCache, avatar_id
from inference.backends import create_backend
from inference.backends.base import Backend
from inference.capacity import safe_streams
from inference.config import ServerConfig
from inference.errors import AtCapacity, InferenceError, NotReady
from inference.loop_lag import LoopLag
from inference.media import AudioLimits, DecodedImage, ImageLimits, default_jpeg_threads
from inference.media.pool import MediaPool
from inference.metrics import Metrics
from inference.scheduler import Scheduler

log = logging.getLogger("inference.runtime")


class Runtime:
    """Everything the endpoints share. See the module docstring."""

    def __init__(self, config: ServerConfig, backend: Backend | None = None):
        self.config = config
        self.backend = backend or create_backend(config)
        self.geometry = self.backend.geometry
        self.metrics = Metrics(self.backend.memory_stats)
        self.metrics.capacity.set_function(lambda: float(self.stream_limit()))
        # In Kubernetes a pod's hostname is its name: streams and probes say which pod served them.
        self.instance = config.instance or socket.gethostname()
        self.scheduler = Scheduler(self.backend, self.metrics, config.max_batch, config.batch_wait_ms / 1000,
                                   config.jpeg_threads or default_jpeg_threads())
        self.avatars = AvatarCache(config.avatar_cache, self._release_avatar)
        self.ready = False
        self.draining = False
        self.load_error: InferenceError | None = None
        self.active = 0
        self.shutdown_hooks: set[Callable[[], None]] = set()
        self.on_fatal: Callable[[InferenceError], None] | None = None
        self.started_at = time.time()
        self.loader: asyncio.Task[None] | None = None
        self.loop_lag = LoopLag(self.metrics.loop_lag)
        self.lag_task: asyncio.Task[None] | None = None
        self.slot_freed = asyncio.Event()
        self.media = MediaPool(config.media_workers, config.media_memory_mb, config.media_timeout_s)
        self.uploads = 0
        cover = max(self.geometry.width, self.geometry.height)
        self.image_limits = ImageLimits(config.max_image_bytes, config.max_image_pixels, config.max_image_aspect, cover)
        self.audio_limits = AudioLimits(config.max_audio_bytes, config.max_audio_seconds, config.max_audio_channels)

    async def start(self) -> None:
        """Start the media workers and the model worker; load + warm the backend in the background."""
        await self.media.start()
        self.scheduler.start()
        self.lag_task = asyncio.get_running_loop().create_task(self.loop_lag.run(), name="loop-lag")
        self.loader = asyncio.get_running_loop().create_task(self._load(), name="load-model")

    async def stop(self) -> None:
        for task in (self.loader, self.lag_task):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.scheduler.stop()
        await self.media.stop()
        try:
            self.backend.close()
        except Exception:  # noqa: BLE001 - shutting down anyway
            log.exception("backend close failed")

    async def _load(self) -> None:
        started = time.perf_counter()
        try:
            await self.scheduler.call(self.backend.load)
            await self.scheduler.call(self.backend.warm_up)
        except InferenceError as error:
            self._fatal(error)
            return
        except Exception as error:  # noqa: BLE001 - any load failure must stop the server with its reason
            log.exception("model load failed")
            self._fatal(InferenceError(f"model load failed: {error}", "see the traceback in the log"))
            return
        self.ready = True
        log.info("model ready", extra={"backend": self.backend.name, "load_s": round(time.perf_counter() - started, 2)})

    def _fatal(self, error: InferenceError) -> None:
        self.load_error = error
        log.error("cannot serve: %s", error.message, extra={"remedy": error.remedy})
        if self.on_fatal:
            self.on_fatal(error)

    def check_admission(self, kind: str) -> None:
        """Raise what `acquire_slot` would raise now, without taking a slot (refuse before reading a body)."""
        self._refusal(kind)

    def acquire_slot(self, kind: str) -> None:
        """Take a stream slot or raise NotReady / AtCapacity (HTTP 503, WS close 1013)."""
        self._refusal(kind)
        self.active += 1
        self.metrics.active.set(self.active)
        self.metrics.requests.labels(kind).inc()

    def _refusal(self, kind: str) -> None:
        if self.draining:
            self.metrics.rejected.labels("draining").inc()
            raise NotReady("the server is shutting down", "reconnect: another replica or the restarted server answers")
        if not self.ready:
            self.metrics.rejected.labels("not_ready").inc()
            raise NotReady("the model is not ready yet", "wait until GET /readyz answers 200")
        limit = self.stream_limit()
        if self.active >= limit:
            self.metrics.rejected.labels("capacity").inc()
            why = "" if limit == self.config.max_streams else \
                f" (measured chunk times keep {limit} stream(s) real time on this model)"
            raise AtCapacity(f"at capacity: {self.active} of {limit} streams busy{why}",
                             retry_after=max(1, round(self.geometry.chunk_seconds)))

    @contextlib.asynccontextmanager
    async def upload_slot(self) -> AsyncIterator[None]:
        """Hold one of FLASHHEAD_MAX_UPLOADS while a body or an inline image is read and decoded."""
        if self.uploads >= self.config.max_uploads:
            self.metrics.rejected.labels("uploads").inc()
            raise AtCapacity(f"at capacity: {self.uploads} of {self.config.max_uploads} uploads are being read or "
                             "decoded (FLASHHEAD_MAX_UPLOADS)")
        self.uploads += 1
        try:
            yield
        finally:
            self.uploads -= 1

    def safe_streams(self) -> int | None:
        """Concurrent streams that stay real time, from the model calls measured so far."""
        return safe_streams(self.scheduler.chunk_times.medians(), self.geometry.chunk_seconds,
                            self.config.max_batch)

    def stream_limit(self) -> int:
        """Streams admitted now: max_streams, lowered to what stays real time (never below one)."""
        safe = self.safe_streams() if self.config.admission == "realtime" else None
        return self.config.max_streams if safe is None else max(1, min(safe, self.config.max_streams))

    def release_slot(self) -> None:
        self.active -= 1
        self.metrics.active.set(self.active)
        self.slot_freed.set()

    async def prepare_avatar(self, image: DecodedImage) -> Avatar:
        """The cached avatar for this photo, preparing it on the model thread if new.

        The photo arrives decoded and shrunk by a media worker (it just covers the output), so the
        backend's share of the work on the model thread is small and bounded."""
        key = avatar_id(image.pixels)
        if key in self.avatars.items:
            return self.avatars.get(key)
        state = await self.scheduler.call(self.backend.prepare_avatar, image.pixels)
        if key in self.avatars.items:  # the same photo was prepared meanwhile by another request
            self._release_avatar(state)
            return self.avatars.get(key)
        return self.avatars.put(Avatar(key, image.width, image.height, state))

    def _release_avatar(self, state: Any) -> None:
        self.scheduler.executor.submit(self.backend.release_avatar, state)

    async def drain(self, grace_seconds: float) -> None:
        """Stop taking streams; let running ones finish for `grace_seconds`; then end them."""
        self.draining = True
        deadline = time.monotonic() + grace_seconds
        while self.active and time.monotonic() < deadline:
            self.slot_freed.clear()
            try:
                await asyncio.wait_for(self.slot_freed.wait(), timeout=max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:  # not the builtin before Python 3.11
                break
        if self.active:
            log.warning("ending %d streams at shutdown", self.active)
        for hook in list(self.shutdown_hooks):
            hook()
        end = time.monotonic() + 5
        while self.shutdown_hooks and time.monotonic() < end:
            await asyncio.sleep(0.02)

    def info(self) -> dict[str, Any]:
        """The body of GET /v1/info."""
        backend = self.backend.info()
        geometry = self.geometry
        return {
            "server": {"name": "flashhead-inference", "version": __version__, "protocol": protocol.VERSION,
                       "instance": self.instance},
            "backend": backend.get("backend", self.backend.name),
            "model_type": backend.get("model_type"),
            "device": backend.get("device"),
            "versions": backend.get("versions", {}),
            "backend_info": backend,
            "fps": geometry.fps,
            "width": geometry.width,
            "height": geometry.height,
            "chunk_frames": geometry.new_frames,
            "frames_per_call": geometry.frames_per_call,
            "motion_frames": geometry.motion_frames,
            "sample_rate": geometry.sample_rate,
            "samples_per_chunk": geometry.samples_per_chunk,
            "chunk_seconds": geometry.chunk_seconds,
            "capacity": {"max_streams": self.config.max_streams, "max_batch": self.config.max_batch,
                         "max_queued_chunks": self.config.max_queued_chunks,
                         "admission": self.config.admission, "safe_streams": self.safe_streams(),
                         "stream_limit": self.stream_limit(),
                         "chunk_seconds_by_batch": {str(size): round(seconds, 4) for size, seconds
                                                    in self.scheduler.chunk_times.medians().items()}},
            "active_streams": self.active,
            "event_loop_lag_ms": self.loop_lag.summary(),
            "ready": self.ready,
            "draining": self.draining,
            "avatars": len(self.avatars.items),
            "limits": {"max_image_bytes": self.config.max_image_bytes,
                       "max_image_pixels": self.config.max_image_pixels,
                       "max_audio_bytes": self.config.max_audio_bytes,
                       "max_image_aspect": self.config.max_image_aspect,
                       "max_audio_seconds": self.config.max_audio_seconds,
                       "max_audio_channels": self.config.max_audio_channels,
                       "max_message_bytes": self.config.max_message_bytes,
                       "max_uploads": self.config.max_uploads,
                       "body_timeout_s": self.config.body_timeout_s,
                       "body_deadline_s": self.config.body_deadline_s,
                       "max_connections": self.config.max_connections},
            "media_workers": self.media.describe(),
            "uptime_s": round(time.time() - self.started_at, 1),
        }
