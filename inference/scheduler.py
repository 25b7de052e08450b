"""The model worker: one thread owns the backend; streams take turns chunk by chunk.

Each stream has a bounded inbox of audio chunks and a bounded outbox of results. The scheduler
picks, round robin, up to `max_batch` streams that have a chunk waiting and room in their outbox,
waits at most `batch_wait_s` for a batch to fill (not when every open stream is in it already),
runs `encode_audio` for each and one `generate_chunks` call on the model thread, and hands each
result back. A stream that is slow to read its results is skipped (backpressure) without holding the
others back. When every stream of a batch wants JPEG of one quality and the backend encodes JPEG on
its device, the batch comes back as JPEG files (`generate_jpeg_chunks`) and the host CPU encodes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from inference.audio_span import AudioSpan
from inference.backends.base import Backend
from inference.capacity import ChunkTimes
from inference.metrics import Metrics

log = logging.getLogger("inference.scheduler")
T = TypeVar("T")
OUTBOX_CHUNKS = 1  # generated chunks waiting per stream: the model works on the next meanwhile


@dataclass
class ChunkJob:
    """One chunk of 16 kHz audio for the model. `keep` frames of the result are sent."""

    samples: np.ndarray | None  # None: a marker (segment end with no audio left), no model call
    keep: int
    epoch: int
    idle: bool = False
    segment_end: bool = False
    span: AudioSpan | None = None  # the input audio its frames show (streams; None for /v1/generate)
    enqueued_at: float = field(default_factory=time.perf_counter)


Frames = np.ndarray | list[bytes]  # (n, H, W, 3) uint8 RGB, or n JPEG files


@dataclass
class ChunkResult:
    job: ChunkJob
    frames: Frames | None
    index: int  # chunk number within the stream
    generation_s: float = 0.0
    queue_s: float = 0.0
    batch_size: int = 1
    error: BaseException | None = None


class Lane:
    """A stream's place in the scheduler: its backend state, inbox and outbox."""

    def __init__(self, state: Any, max_queued: int, jpeg_quality: int | None = None):
        self.state = state
        self.jpeg_quality = jpeg_quality  # the stream sends JPEG of this quality; None: it wants RGB frames
        self.inbox: deque[ChunkJob] = deque()
        self.max_queued = max_queued
        self.outbox: asyncio.Queue[ChunkResult] = asyncio.Queue()
        self.epoch = 0
        self.in_flight = False
        self.closed = False
        self.chunks = 0
        self.changed = asyncio.Event()  # set whenever inbox space frees or a job finishes

    @property
    def has_room(self) -> bool:
        return len(self.inbox) < self.max_queued

    @property
    def busy(self) -> bool:
        """Work queued, in flight or not yet taken by the stream."""
        return bool(self.inbox) or self.in_flight or not self.outbox.empty()

    def ready(self) -> bool:
        return (not self.closed and not self.in_flight and bool(self.inbox)
                and self.outbox.qsize() < OUTBOX_CHUNKS)


class Scheduler:
    """Owns the backend and its thread; see the module docstring."""

    def __init__(self, backend: Backend, metrics: Metrics, max_batch: int = 1, batch_wait_s: float = 0.005):
        self.backend = backend
        self.metrics = metrics
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.chunk_times = ChunkTimes()
        self.lanes: list[Lane] = []
        self.cursor = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` on the model thread (between chunks) and return its result."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def open_lane(self, avatar: Any, seed: int, max_queued: int, jpeg_quality: int | None = None) -> Lane:
        """Start a backend stream on the model thread and register it."""
        lane = Lane(await self.call(self.backend.new_stream, avatar, seed), max_queued, jpeg_quality)
        self.lanes.append(lane)
        return lane

    def close_lane(self, lane: Lane) -> None:
        """Forget the lane now; its backend state is freed on the model thread (after any job in flight)."""
        if lane.closed:
            return
        lane.closed = True
        self.metrics.queued.dec(len(lane.inbox))
        lane.inbox.clear()
        while not lane.outbox.empty():
            lane.outbox.get_nowait()
        if lane in self.lanes:
            self.lanes.remove(lane)
        if not lane.in_flight:
            self.executor.submit(self._close_state, lane.state)
        lane.changed.set()

    async def submit(self, lane: Lane, job: ChunkJob) -> None:
        """Queue a chunk, waiting while the lane's inbox is full (backpressure to the client)."""
        while not lane.has_room and not lane.closed:
            lane.changed.clear()
            await lane.changed.wait()
        if lane.closed:
            return
        job.enqueued_at = time.perf_counter()
        lane.inbox.append(job)
        self.metrics.queued.inc()
        self.wake.set()

    def drop_queued(self, lane: Lane) -> None:
        """Interrupt: forget queued chunks and undelivered results; results in flight are ignored."""
        lane.epoch += 1
        self.metrics.queued.dec(len(lane.inbox))
        lane.inbox.clear()
        while not lane.outbox.empty():
            lane.outbox.get_nowait()
        lane.changed.set()
        self.wake.set()
        self.executor.submit(self.backend.clear_audio, lane.state)

    def result_taken(self) -> None:
        """A stream took a result from its outbox: it may be ready again."""
        self.wake.set()

    async def _run(self) -> None:
        while True:
            batch = self._pick()
            if not batch:
                self.wake.clear()
                await self.wake.wait()
                continue
            if len(batch) < min(self.max_batch, len(self.lanes)) and self.batch_wait_s > 0:
                await asyncio.sleep(self.batch_wait_s)  # another stream's chunk may be about to arrive
                batch = self._pick() or batch
            await self._run_batch(batch)

    def _pick(self) -> list[Lane]:
        """Up to max_batch ready lanes, round robin from the cursor (fair across streams)."""
        picked: list[Lane] = []
        count = len(self.lanes)
        for offset in range(count):
            lane = self.lanes[(self.cursor + offset) % count]
            if lane.ready():
                picked.append(lane)
                if len(picked) == self.max_batch:
                    break
        if picked and count:
            self.cursor = (self.lanes.index(picked[-1]) + 1) % count
        return [lane for lane in picked if lane.ready()]

    async def _run_batch(self, lanes: list[Lane]) -> None:
        jobs = [lane.inbox.popleft() for lane in lanes]
        self.metrics.queued.dec(len(jobs))
        markers = [(lane, job) for lane, job in zip(lanes, jobs, strict=True) if job.samples is None]
        for lane, job in markers:
            geometry = self.backend.geometry
            empty = np.empty((0, geometry.height, geometry.width, 3), np.uint8)
            self._deliver(lane, job, empty, time.perf_counter(), 0.0, None, 0)
        lanes = [lane for lane, job in zip(lanes, jobs, strict=True) if job.samples is not None]
        jobs = [job for job in jobs if job.samples is not None]
        if not jobs:
            return
        for lane in lanes:
            lane.in_flight = True
            lane.changed.set()
        started = time.perf_counter()
        frames: list[Frames | None]
        error: Exception | None = None
        try:
            frames = list(await self.call(self._generate, [lane.state for lane in lanes], jobs,
                                          self._device_jpeg_quality(lanes)))
        except Exception as failure:  # noqa: BLE001 - reported to each stream of the batch
            log.exception("backend failed on a batch of %d", len(lanes))
            frames, error = [None] * len(lanes), failure
        elapsed = time.perf_counter() - started
        self.metrics.batch_size.observe(len(lanes))
        if error is None:
            self.chunk_times.record(len(lanes), elapsed)
        for lane, job, chunk in zip(lanes, jobs, frames, strict=True):
            self._deliver(lane, job, chunk, started, elapsed, error, len(lanes))

    def _device_jpeg_quality(self, lanes: list[Lane]) -> int | None:
        """The JPEG quality the backend should encode the batch at, or None to return RGB frames."""
        qualities = {lane.jpeg_quality for lane in lanes}
        if len(qualities) == 1 and None not in qualities and self.backend.encodes_jpeg:
            return qualities.pop()
        return None

    def _generate(self, states: list[Any], jobs: list[ChunkJob], jpeg_quality: int | None) -> list[Frames]:
        for state, job in zip(states, jobs, strict=True):
            assert job.samples is not None
            self.backend.encode_audio(state, job.samples)
        if jpeg_quality is not None:
            return list(self.backend.generate_jpeg_chunks(states, jpeg_quality))
        return list(self.backend.generate_chunks(states))

    def _deliver(self, lane: Lane, job: ChunkJob, frames: Frames | None, started: float, elapsed: float,
                 error: BaseException | None, batch_size: int) -> None:
        lane.in_flight = False
        lane.changed.set()
        if lane.closed:
            self.executor.submit(self._close_state, lane.state)
            return
        if error is None and batch_size:
            self.metrics.chunks.inc()
            self.metrics.chunk_latency.observe(elapsed)
            self.metrics.queue_wait.observe(started - job.enqueued_at)
        if job.epoch != lane.epoch:
            return
        kept = frames[: job.keep] if frames is not None else None
        lane.outbox.put_nowait(ChunkResult(job, kept, lane.chunks, elapsed, started - job.enqueued_at,
                                           batch_size, error))
        lane.chunks += 1

    def _close_state(self, state: Any) -> None:
        try:
            self.backend.close_stream(state)
        except Exception:  # noqa: BLE001 - a failed cleanup must not stop the worker
            log.exception("backend close_stream failed")
