"""The model worker: one thread owns the backend; streams take turns chunk by chunk.

Each stream has a bounded inbox of audio chunks and a bounded outbox of results. The scheduler
picks, round robin, up to `max_batch` streams that have a chunk waiting and room in their outbox,
waits at most `batch_wait_s` for a batch to fill (not when every open stream is in it already),
runs `encode_audio` for each and one `generate_chunks` call on the model thread, and hands each
result back. A stream that is slow to read its results is skipped (backpressure) without holding the
others back. When every stream of a batch wants JPEG of one quality and the backend encodes JPEG on
its device, the batch comes back as JPEG files (`start_jpeg_chunks`) and the host CPU encodes
nothing; otherwise the output thread encodes the JPEG streams' frames on the host, in threads.

Two stages: the model thread computes a batch, then the output thread finishes it (the copy of its
frames, or of the JPEG files the device encoded, to the host, and any host JPEG) while the model
thread computes the next batch. A stream's next chunk may compute while its last one is encoded (its
motion state is already updated); results reach each stream in order, a batch's after the batch
before it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from inference.audio_span import AudioSpan
from inference.backends.base import Backend
from inference.capacity import ChunkTimes
from inference.media.output import JpegThreads
from inference.metrics import Metrics

log = logging.getLogger("inference.scheduler")
T = TypeVar("T")
OUTBOX_CHUNKS = 1  # generated chunks waiting per stream: the model works on the next meanwhile
ENCODING_CHUNKS = 1  # chunks of a stream on the output thread while its next one computes


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
Finish = Callable[[], Sequence[Frames]]  # a computed batch's last step (copy or JPEG), on the output thread


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
        self.in_flight = False  # on the model thread
        self.encoding = 0  # computed chunks on the output thread, not yet delivered
        self.closed = False
        self.chunks = 0
        self.changed = asyncio.Event()  # set whenever inbox space frees or a job finishes

    @property
    def has_room(self) -> bool:
        return len(self.inbox) < self.max_queued

    @property
    def working(self) -> bool:
        """Work queued, computing or being encoded: a result is still to come."""
        return bool(self.inbox) or self.in_flight or self.encoding > 0

    @property
    def busy(self) -> bool:
        """Work to come or results not yet taken by the stream."""
        return self.working or not self.outbox.empty()

    def ready(self) -> bool:
        return (not self.closed and not self.in_flight and bool(self.inbox)
                and self.outbox.qsize() < OUTBOX_CHUNKS and self.encoding <= ENCODING_CHUNKS)


class Scheduler:
    """Owns the backend and its thread; see the module docstring."""

    def __init__(self, backend: Backend, metrics: Metrics, max_batch: int = 1, batch_wait_s: float = 0.005,
                 jpeg_threads: int = 1):
        self.backend = backend
        self.metrics = metrics
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.output = ThreadPoolExecutor(max_workers=1, thread_name_prefix="output")
        self.jpeg = JpegThreads(jpeg_threads)
        self.delivery: asyncio.Task[None] | None = None  # the newest batch's; each waits for the one before
        self.deliveries: set[asyncio.Task[None]] = set()
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
        for task in filter(None, (self.task, *self.deliveries)):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.output.shutdown(wait=True, cancel_futures=True)
        self.jpeg.close()

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
        """Compute the batch on the model thread; its delivery (after the output thread) runs on meanwhile."""
        jobs = [lane.inbox.popleft() for lane in lanes]
        self.metrics.queued.dec(len(jobs))
        computing = [(lane, job) for lane, job in zip(lanes, jobs, strict=True) if job.samples is not None]
        for lane, _ in computing:
            lane.in_flight = True
            lane.changed.set()
        started = time.perf_counter()
        finish: Finish | BaseException = _nothing
        if computing:
            try:
                finish = await self.call(self._generate, [lane.state for lane, _ in computing],
                                         [job for _, job in computing],
                                         self._device_jpeg_quality([lane for lane, _ in computing]))
            except Exception as failure:  # noqa: BLE001 - reported to each stream of the batch
                log.exception("backend failed on a batch of %d", len(computing))
                finish = failure
        computed_s = time.perf_counter() - started
        for lane, _ in computing:
            lane.in_flight = False
            if lane.closed:  # closed while computing (close_lane left it to us): the encoding needs no state
                self.executor.submit(self._close_state, lane.state)
        for lane in lanes:
            lane.encoding += 1
            lane.changed.set()
        self.delivery = asyncio.get_running_loop().create_task(
            self._deliver_batch(lanes, jobs, finish, started, computed_s, self.delivery), name="deliver")
        self.deliveries.add(self.delivery)
        self.delivery.add_done_callback(self.deliveries.discard)

    async def _deliver_batch(self, lanes: list[Lane], jobs: list[ChunkJob],
                             finish: Finish | BaseException, started: float, computed_s: float,
                             before: asyncio.Task[None] | None) -> None:
        """Finish the batch on the output thread, then, after the batch before it, hand each stream its result."""
        error: BaseException | None = None
        frames: list[Frames] = []
        encode_s = 0.0
        wanted = [(lane.jpeg_quality, job.keep) for lane, job in zip(lanes, jobs, strict=True)
                  if job.samples is not None]
        if isinstance(finish, BaseException):
            error = finish
        else:
            try:
                frames, encode_s = await asyncio.get_running_loop().run_in_executor(
                    self.output, self._finish, finish, wanted)
            except Exception as failure:  # noqa: BLE001 - reported to each stream of the batch
                log.exception("finishing a batch of %d failed", len(lanes))
                error = failure
        if before is not None:  # results reach a stream in the order its chunks were computed
            await asyncio.wait({before})  # neither cancels it nor takes its failure on
        elapsed = time.perf_counter() - started
        computed = [(lane, job) for lane, job in zip(lanes, jobs, strict=True) if job.samples is not None]
        if computed:
            self.metrics.batch_size.observe(len(computed))
            if error is None:
                self.chunk_times.record(len(computed), max(computed_s, encode_s))  # the slower stage sets the pace
                self.metrics.batch_stage.labels("compute", str(len(computed))).observe(computed_s)
                self.metrics.batch_stage.labels("finish", str(len(computed))).observe(encode_s)
        outcomes: list[Frames | None] = list(frames) if error is None else [None] * len(computed)
        results = iter(outcomes)
        for lane, job in zip(lanes, jobs, strict=True):
            lane.encoding -= 1
            if job.samples is None:  # a marker: no frames, after the chunks before it
                geometry = self.backend.geometry
                empty = np.empty((0, geometry.height, geometry.width, 3), np.uint8)
                self._deliver(lane, job, empty, started, 0.0, None, 0)
            else:
                self._deliver(lane, job, next(results), started, elapsed, error, len(computed))
        self.wake.set()

    def _finish(self, finish: Finish, wanted: list[tuple[int | None, int]]) -> tuple[list[Frames], float]:
        """On the output thread: the batch's frames on the host, the RGB ones of streams that want JPEG encoded
        here (`wanted`: each computed stream's JPEG quality or None, and the frames it keeps); and the seconds."""
        started = time.perf_counter()
        frames = list(finish())
        host: list[int] = []
        chunks: list[tuple[np.ndarray, int]] = []
        for i, (quality, keep) in enumerate(wanted):
            chunk = frames[i]
            if quality is not None and isinstance(chunk, np.ndarray):
                host.append(i)
                chunks.append((chunk[:keep], quality))
        if chunks:
            for i, files in zip(host, self.jpeg.encode(chunks), strict=True):
                frames[i] = files
        return frames, time.perf_counter() - started

    def _device_jpeg_quality(self, lanes: list[Lane]) -> int | None:
        """The JPEG quality the backend should encode the batch at, or None to return RGB frames."""
        qualities = {lane.jpeg_quality for lane in lanes}
        if len(qualities) == 1 and None not in qualities and self.backend.encodes_jpeg:
            return qualities.pop()
        return None

    def _generate(self, states: list[Any], jobs: list[ChunkJob],
                  jpeg_quality: int | None) -> Finish:
        """On the model thread: the batch's chunks, and what finishes them on the output thread."""
        for state, job in zip(states, jobs, strict=True):
            assert job.samples is not None
            self.backend.encode_audio(state, job.samples)
        if jpeg_quality is not None:
            return self.backend.start_jpeg_chunks(states, jpeg_quality)
        return self.backend.start_chunks(states)

    def _deliver(self, lane: Lane, job: ChunkJob, frames: Frames | None, started: float, elapsed: float,
                 error: BaseException | None, batch_size: int) -> None:
        lane.changed.set()
        if lane.closed:
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


def _nothing() -> list[Frames]:
    return []
