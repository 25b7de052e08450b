"""The scheduler alone, with a recording backend: fairness, batching, backpressure, interrupt, cleanup."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from inference.backends.base import Backend, ChunkGeometry
from inference.metrics import Metrics
from inference.scheduler import ENCODING_CHUNKS, OUTBOX_CHUNKS, ChunkJob, Lane, Scheduler

GEOMETRY = ChunkGeometry(width=8, height=8)


class RecordingBackend(Backend):
    """Frames carry the stream's name and chunk number; every call is recorded with its thread."""

    name = "recording"
    geometry = GEOMETRY

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple[str, ...]] = []
        self.threads: set[int] = set()
        self.closed: list[str] = []
        self.cleared: list[str] = []
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    @classmethod
    def from_config(cls, config: Any) -> RecordingBackend:
        return cls()

    def load(self) -> None:
        pass

    def prepare_avatar(self, image: np.ndarray) -> Any:
        return image

    def new_stream(self, avatar: Any, seed: int) -> dict:
        return {"name": avatar, "chunks": 0, "audio": None}

    def encode_audio(self, stream: dict, samples: np.ndarray) -> None:
        self.threads.add(threading.get_ident())
        stream["audio"] = samples

    def generate_chunk(self, stream: dict) -> np.ndarray:
        if stream["name"] == self.fail_on:
            raise RuntimeError("model exploded")
        stream["chunks"] += 1
        frames = np.zeros((GEOMETRY.new_frames, 8, 8, 3), np.uint8)
        frames[:, 0, 0, 0] = stream["chunks"]
        return frames

    def generate_chunks(self, streams: list[dict]) -> list[np.ndarray]:
        self.gate.wait()
        self.calls.append(tuple(stream["name"] for stream in streams))
        return super().generate_chunks(streams)

    def clear_audio(self, stream: dict) -> None:
        self.cleared.append(stream["name"])

    def close_stream(self, stream: dict) -> None:
        self.closed.append(stream["name"])


def _job(lane: Lane, keep: int = GEOMETRY.new_frames) -> ChunkJob:
    return ChunkJob(np.zeros(GEOMETRY.samples_per_chunk, np.float32), keep, lane.epoch)


async def _scheduler(backend: RecordingBackend, max_batch: int = 1, wait: float = 0.0) -> Scheduler:
    scheduler = Scheduler(backend, Metrics(), max_batch=max_batch, batch_wait_s=wait)
    scheduler.start()
    return scheduler


async def _until(predicate: Any) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


@pytest.mark.asyncio
async def test_streams_take_turns_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Round robin alone: room for every result, so no stream is skipped for backpressure (tested below) when the
    # test is slow to take its results or the output thread to deliver them.
    monkeypatch.setattr("inference.scheduler.OUTBOX_CHUNKS", 3)
    monkeypatch.setattr("inference.scheduler.ENCODING_CHUNKS", 3)
    backend = RecordingBackend()
    backend.gate.clear()  # hold the model until every stream has queued its chunks
    scheduler = await _scheduler(backend)
    lanes = [await scheduler.open_lane(name, 0, max_queued=3) for name in "abc"]
    for lane in lanes:
        for _ in range(3):
            await scheduler.submit(lane, _job(lane))
    backend.gate.set()
    results = {name: [] for name in "abc"}

    async def drain(lane: Lane, name: str) -> None:
        for _ in range(3):
            result = await lane.outbox.get()
            scheduler.result_taken()
            results[name].append(int(result.frames[0, 0, 0, 0]))

    await asyncio.gather(*(drain(lane, name) for lane, name in zip(lanes, "abc", strict=True)))
    await scheduler.stop()
    assert [call[0] for call in backend.calls] == ["a", "b", "c"] * 3
    assert results == {name: [1, 2, 3] for name in "abc"}
    assert len(backend.threads) == 1  # one thread owns the model


@pytest.mark.asyncio
async def test_ready_chunks_of_several_streams_are_batched() -> None:
    backend = RecordingBackend()
    backend.gate.clear()
    scheduler = await _scheduler(backend, max_batch=4, wait=0.001)
    lanes = [await scheduler.open_lane(name, 0, max_queued=2) for name in "abcde"]
    for lane in lanes:
        await scheduler.submit(lane, _job(lane))
    backend.gate.set()
    for lane in lanes:
        result = await lane.outbox.get()
        scheduler.result_taken()
        assert result.frames.shape == (24, 8, 8, 3) and result.error is None
    await scheduler.stop()
    assert max(len(call) for call in backend.calls) == 4
    assert sorted(name for call in backend.calls for name in call) == list("abcde")


@pytest.mark.asyncio
async def test_full_queue_blocks_the_producer_until_results_are_taken() -> None:
    backend = RecordingBackend()
    scheduler = await _scheduler(backend)
    lane = await scheduler.open_lane("a", 0, max_queued=2)
    accepted = 0
    while True:  # a stream that takes no result: the server accepts a bounded amount of its audio, then waits
        submitted = asyncio.create_task(scheduler.submit(lane, _job(lane)))
        await asyncio.sleep(0.05)
        if not submitted.done():
            break
        accepted += 1
    ahead = OUTBOX_CHUNKS + ENCODING_CHUNKS  # results made before the stream took one
    assert len(lane.inbox) == 2 and lane.outbox.qsize() <= ahead and 2 + OUTBOX_CHUNKS <= accepted <= 2 + ahead
    await lane.outbox.get()
    scheduler.result_taken()
    await asyncio.wait_for(submitted, timeout=10)
    assert len(lane.inbox) <= 2
    scheduler.close_lane(lane)
    await scheduler.stop()


@pytest.mark.asyncio
async def test_interrupt_drops_queued_and_in_flight_results() -> None:
    backend = RecordingBackend()
    backend.gate.clear()
    scheduler = await _scheduler(backend)
    lane = await scheduler.open_lane("a", 0, max_queued=4)
    for _ in range(3):
        await scheduler.submit(lane, _job(lane))
    await _until(lambda: lane.in_flight)
    scheduler.drop_queued(lane)
    assert not lane.inbox
    await scheduler.submit(lane, _job(lane, keep=5))
    backend.gate.set()
    result = await asyncio.wait_for(lane.outbox.get(), timeout=10)
    assert len(result.frames) == 5 and result.job.epoch == 1  # the in-flight chunk of epoch 0 was dropped
    await _until(lambda: backend.cleared == ["a"])
    scheduler.close_lane(lane)
    await scheduler.stop()


@pytest.mark.asyncio
async def test_closing_frees_backend_state_once_even_in_flight() -> None:
    backend = RecordingBackend()
    backend.gate.clear()
    scheduler = await _scheduler(backend)
    busy = await scheduler.open_lane("busy", 0, max_queued=2)
    idle = await scheduler.open_lane("idle", 0, max_queued=2)
    await scheduler.submit(busy, _job(busy))
    await _until(lambda: busy.in_flight)
    scheduler.close_lane(busy)
    scheduler.close_lane(idle)
    scheduler.close_lane(idle)
    backend.gate.set()
    await _until(lambda: sorted(backend.closed) == ["busy", "idle"])
    assert busy.outbox.empty() and scheduler.lanes == []
    await scheduler.stop()


@pytest.mark.asyncio
async def test_backend_failure_reaches_only_its_stream() -> None:
    backend = RecordingBackend(fail_on="bad")
    scheduler = await _scheduler(backend)
    bad = await scheduler.open_lane("bad", 0, max_queued=2)
    good = await scheduler.open_lane("good", 0, max_queued=2)
    await scheduler.submit(bad, _job(bad))
    failed = await bad.outbox.get()
    await scheduler.submit(good, _job(good))
    fine = await good.outbox.get()
    assert isinstance(failed.error, RuntimeError) and failed.frames is None
    assert fine.error is None and fine.frames is not None
    await scheduler.stop()


class JpegBackend(RecordingBackend):
    """Encodes on its 'device': each frame becomes a tagged JPEG stand-in with the quality asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.jpeg_calls: list[tuple[tuple[str, ...], int]] = []

    @property
    def encodes_jpeg(self) -> bool:
        return True

    def generate_jpeg_chunks(self, streams: list[dict], quality: int) -> list[list[bytes]]:
        self.jpeg_calls.append((tuple(stream["name"] for stream in streams), quality))
        return [[f"{stream['name']}:{quality}:{index}".encode() for index in range(GEOMETRY.new_frames)]
                for stream in streams]


async def _one_batch(backend: RecordingBackend, qualities: dict[str, int | None], keep: int) -> dict[str, Any]:
    backend.gate.clear()
    scheduler = await _scheduler(backend, max_batch=len(qualities), wait=0.001)
    lanes = {name: await scheduler.open_lane(name, 0, 2, quality) for name, quality in qualities.items()}
    for lane in lanes.values():
        await scheduler.submit(lane, _job(lane, keep))
    backend.gate.set()
    results = {name: await lane.outbox.get() for name, lane in lanes.items()}
    await scheduler.stop()
    return results


@pytest.mark.asyncio
async def test_a_batch_wanting_jpeg_is_encoded_by_a_backend_that_can() -> None:
    backend = JpegBackend()
    results = await _one_batch(backend, {"a": 80, "b": 80}, keep=5)
    assert backend.jpeg_calls == [(("a", "b"), 80)] and backend.calls == []
    assert results["a"].frames == [f"a:80:{index}".encode() for index in range(5)]  # `keep` applies to files too
    assert results["b"].batch_size == 2


def _host_jpeg(files: Any, frames: int, quality: int) -> None:
    """`files` are `frames` real JPEG files of the 8x8 geometry, written at `quality` (its quantisation tables)."""
    assert isinstance(files, list) and len(files) == frames
    reference = io.BytesIO()
    Image.new("RGB", (8, 8)).save(reference, format="JPEG", quality=quality)
    tables = Image.open(reference).quantization
    for file in files:
        image = Image.open(io.BytesIO(file))
        assert (image.format, image.size) == ("JPEG", (8, 8))
        assert image.quantization == tables


@pytest.mark.asyncio
async def test_a_batch_with_an_rgb_stream_or_mixed_qualities_is_computed_as_rgb_and_encoded_on_the_host() -> None:
    for qualities in ({"a": 80, "b": None}, {"a": 80, "b": 60}):
        backend = JpegBackend()
        results = await _one_batch(backend, qualities, keep=5)
        assert backend.jpeg_calls == [] and backend.calls == [("a", "b")]
        _host_jpeg(results["a"].frames, 5, 80)
        if qualities["b"] is None:
            assert isinstance(results["b"].frames, np.ndarray) and results["b"].frames.shape == (5, 8, 8, 3)
        else:
            _host_jpeg(results["b"].frames, 5, 60)


@pytest.mark.asyncio
async def test_a_backend_that_cannot_encode_gets_rgb_requests_and_the_host_encodes() -> None:
    backend = RecordingBackend()
    results = await _one_batch(backend, {"a": 85, "b": None}, keep=GEOMETRY.new_frames)
    assert backend.calls == [("a", "b")]
    _host_jpeg(results["a"].frames, GEOMETRY.new_frames, 85)
    assert results["b"].frames.shape == (24, 8, 8, 3)


@pytest.mark.asyncio
async def test_no_wait_for_a_batch_to_fill_when_every_stream_is_in_it() -> None:
    scheduler = await _scheduler(RecordingBackend(), max_batch=8, wait=60.0)
    lanes = [await scheduler.open_lane(name, 0, max_queued=2) for name in "ab"]
    for lane in lanes:
        await scheduler.submit(lane, _job(lane))
    for lane in lanes:  # a 60 s wait would time out here: with both streams ready there is no one to wait for
        assert (await asyncio.wait_for(lane.outbox.get(), timeout=10)).error is None
    await scheduler.stop()


class SlowOutputBackend(JpegBackend):
    """Finishes a batch (its JPEG files, or its raw frames reaching the host) in a second step that waits for
    `output_gate`, as a device encoder or copy would take time."""

    def __init__(self, fail_output: bool = False) -> None:
        super().__init__()
        self.output_gate = threading.Event()
        self.output_threads: set[int] = set()
        self.fail_output = fail_output
        self.computed = 0

    def start_jpeg_chunks(self, streams: list[dict], quality: int) -> Any:
        files = self.generate_jpeg_chunks(streams, quality)
        self.computed += 1
        for stream in streams:
            stream["chunks"] += 1
        numbers = [stream["chunks"] for stream in streams]  # each stream's chunk, as it was computed
        return self._gated(lambda: [[f"{number}:".encode() + file for file in per_stream]
                                    for number, per_stream in zip(numbers, files, strict=True)])

    def start_chunks(self, streams: list[dict]) -> Any:
        frames = self.generate_chunks(streams)
        return self._gated(lambda: frames)

    def _gated(self, result: Any) -> Any:
        def finish() -> Any:
            self.output_threads.add(threading.get_ident())
            self.output_gate.wait()
            if self.fail_output:
                raise RuntimeError("encoder exploded")
            return result()

        return finish


def _chunk_number(result: Any) -> int:
    return int(result.frames[0].split(b":")[0])


@pytest.mark.asyncio
async def test_the_next_chunk_computes_while_the_last_is_encoded_and_results_keep_their_order() -> None:
    backend = SlowOutputBackend()
    scheduler = await _scheduler(backend, max_batch=2)
    lanes = [await scheduler.open_lane(name, 0, 3, 80) for name in "ab"]
    for lane in lanes:
        for _ in range(3):
            await scheduler.submit(lane, _job(lane))
    await _until(lambda: backend.computed == 2)  # chunk 2 computed while chunk 1 waits on the output thread
    await asyncio.sleep(0.05)
    assert all(lane.outbox.empty() and lane.encoding == 2 and lane.working for lane in lanes)
    assert backend.computed == 2  # not further: a stream has at most one chunk encoding beside the next
    backend.output_gate.set()
    for lane in lanes:
        numbers = []
        for _ in range(3):
            numbers.append(_chunk_number(await asyncio.wait_for(lane.outbox.get(), timeout=10)))
            scheduler.result_taken()
        assert numbers == [1, 2, 3]
    assert backend.output_threads and backend.output_threads.isdisjoint(backend.threads)  # off the model thread
    await scheduler.stop()


@pytest.mark.asyncio
async def test_a_segment_end_waits_for_the_chunk_still_encoding() -> None:
    backend = SlowOutputBackend()
    scheduler = await _scheduler(backend)
    lane = await scheduler.open_lane("a", 0, 3, 80)
    await scheduler.submit(lane, _job(lane))
    await scheduler.submit(lane, ChunkJob(None, 0, lane.epoch, segment_end=True))
    await _until(lambda: not lane.inbox and lane.encoding == 2)
    assert lane.outbox.empty() and lane.working  # the marker did not overtake the frames
    backend.output_gate.set()
    first = await asyncio.wait_for(lane.outbox.get(), timeout=10)
    scheduler.result_taken()
    marker = await asyncio.wait_for(lane.outbox.get(), timeout=10)
    assert first.frames is not None and len(first.frames) == GEOMETRY.new_frames
    assert marker.job.segment_end and marker.frames is not None and len(marker.frames) == 0
    await _until(lambda: not lane.working)
    await scheduler.stop()


@pytest.mark.asyncio
async def test_closing_while_encoding_frees_the_state_once_and_delivers_nothing() -> None:
    backend = SlowOutputBackend()
    scheduler = await _scheduler(backend)
    lane = await scheduler.open_lane("a", 0, 2, 80)
    await scheduler.submit(lane, _job(lane))
    await _until(lambda: lane.encoding == 1 and not lane.in_flight)
    scheduler.close_lane(lane)
    backend.output_gate.set()
    await _until(lambda: backend.closed == ["a"] and lane.encoding == 0)
    await asyncio.sleep(0.05)
    assert backend.closed == ["a"] and lane.outbox.empty()
    await scheduler.stop()


@pytest.mark.asyncio
async def test_a_failed_encoding_reaches_the_streams_of_its_batch_and_the_next_chunk_still_runs() -> None:
    backend = SlowOutputBackend(fail_output=True)
    backend.output_gate.set()
    scheduler = await _scheduler(backend, max_batch=2)
    lanes = [await scheduler.open_lane(name, 0, 2, 80) for name in "ab"]
    for lane in lanes:
        await scheduler.submit(lane, _job(lane))
    failed = [await asyncio.wait_for(lane.outbox.get(), timeout=10) for lane in lanes]
    assert all(isinstance(result.error, RuntimeError) and result.frames is None for result in failed)
    backend.fail_output = False
    for lane in lanes:
        scheduler.result_taken()
        await scheduler.submit(lane, _job(lane))
    fine = [await asyncio.wait_for(lane.outbox.get(), timeout=10) for lane in lanes]
    assert all(result.error is None and _chunk_number(result) == 2 for result in fine)
    await scheduler.stop()


@pytest.mark.asyncio
async def test_raw_frames_are_copied_on_the_output_thread_beside_the_next_chunk() -> None:
    backend = SlowOutputBackend()
    scheduler = await _scheduler(backend)
    lane = await scheduler.open_lane("a", 0, max_queued=3)
    for _ in range(3):
        await scheduler.submit(lane, _job(lane))
    await _until(lambda: len(backend.calls) == 2)  # chunk 2 computed while chunk 1's copy waits
    assert lane.outbox.empty() and lane.encoding == 2
    backend.output_gate.set()
    numbers = []
    for _ in range(3):
        numbers.append(int((await asyncio.wait_for(lane.outbox.get(), timeout=10)).frames[0, 0, 0, 0]))
        scheduler.result_taken()
    assert numbers == [1, 2, 3] and backend.output_threads.isdisjoint(backend.threads)
    await scheduler.stop()


@pytest.mark.asyncio
async def test_a_delivery_that_fails_does_not_hold_back_the_batches_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = RecordingBackend()
    scheduler = await _scheduler(backend)
    lane = await scheduler.open_lane("a", 0, max_queued=3)
    deliver, calls = scheduler._deliver, []

    def fails_once(*args: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("a bug in the first delivery")
        deliver(*args)

    monkeypatch.setattr(scheduler, "_deliver", fails_once)
    for _ in range(2):
        await scheduler.submit(lane, _job(lane))
    result = await asyncio.wait_for(lane.outbox.get(), timeout=10)
    assert int(result.frames[0, 0, 0, 0]) == 2  # the second chunk arrives although the first one's delivery broke
    await scheduler.stop()


class TimedStagesBackend(RecordingBackend):
    """Computes a batch in `compute_s` on the model thread and finishes it in `finish_s` on the output thread."""

    def __init__(self, compute_s: float, finish_s: float) -> None:
        super().__init__()
        self.compute_s, self.finish_s = compute_s, finish_s

    def start_chunks(self, streams: list[dict]) -> Any:
        time.sleep(self.compute_s)
        frames = self.generate_chunks(streams)

        def finish() -> list[np.ndarray]:
            time.sleep(self.finish_s)
            return frames

        return finish


@pytest.mark.parametrize(("compute_s", "finish_s"), [(0.1, 0.3), (0.3, 0.1)])
@pytest.mark.asyncio
async def test_capacity_counts_the_slower_stage_of_a_batch(compute_s: float, finish_s: float) -> None:
    # The stages overlap, so the slower one sets how often a batch can start: admission must not count the sum
    # (that would refuse streams the server keeps up with) nor only the model's part (the output could lag).
    scheduler = await _scheduler(TimedStagesBackend(compute_s, finish_s))
    lane = await scheduler.open_lane("a", 0, max_queued=2)
    for _ in range(3):
        await scheduler.submit(lane, _job(lane))
        await asyncio.wait_for(lane.outbox.get(), timeout=10)
        scheduler.result_taken()
    median = scheduler.chunk_times.medians()[1]
    assert max(compute_s, finish_s) <= median < compute_s + finish_s
    await scheduler.stop()


@pytest.mark.asyncio
async def test_a_failed_host_encode_fails_that_batch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(frame: np.ndarray, quality: int) -> bytes:
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr("inference.media.output.encode_jpeg", broken)
    results = await _one_batch(RecordingBackend(), {"a": 85, "b": 85}, keep=GEOMETRY.new_frames)
    assert all(isinstance(result.error, RuntimeError) and result.frames is None for result in results.values())


@pytest.mark.asyncio
async def test_each_batch_reports_the_time_of_both_stages() -> None:
    scheduler = await _scheduler(RecordingBackend(), max_batch=2, wait=0.001)
    lanes = [await scheduler.open_lane(name, 0, 2, 85) for name in "ab"]
    for lane in lanes:
        await scheduler.submit(lane, _job(lane))
    for lane in lanes:
        await lane.outbox.get()
    await scheduler.stop()
    registry = scheduler.metrics.registry
    for stage in ("compute", "finish"):
        labels = {"stage": stage, "batch_size": "2"}
        assert registry.get_sample_value("flashhead_batch_stage_seconds_count", labels) == 1
        assert registry.get_sample_value("flashhead_batch_stage_seconds_sum", labels) > 0
