"""A stream session: audio in (any rate, any chunk sizes) -> whole model chunks -> results out.

Used by both WS /v1/stream and POST /v1/generate. Audio accumulates until a full chunk
(geometry.samples_per_chunk at 16 kHz) is there; `flush` pads the last partial chunk with silence
and marks how many of its frames cover real audio, so the output has exactly ceil(audio / frame)
frames per segment.
"""

from __future__ import annotations

import math
import time

import numpy as np

from inference.audio_span import AudioSpan
from inference.backends.base import ChunkGeometry
from inference.media import PcmResampler
from inference.scheduler import ChunkJob, ChunkResult, Lane, Scheduler


class Session:
    """One stream's audio bookkeeping on top of its scheduler lane."""

    def __init__(self, scheduler: Scheduler, lane: Lane, geometry: ChunkGeometry, input_rate: int | None = None):
        self.scheduler = scheduler
        self.lane = lane
        self.geometry = geometry
        self.input_rate = input_rate or geometry.sample_rate  # the client's rate, for the frames' audio spans
        self.segment_origin = 0  # client samples received before the current segment (set by the reader)
        self.pending = np.zeros(0, dtype=np.float32)
        self.segment_samples = 0  # 16 kHz samples queued for the current segment
        self.audio_samples = 0  # 16 kHz samples received in total
        self.interrupts = 0
        self.last_audio_at = time.monotonic()

    async def push(self, samples: np.ndarray) -> None:
        """Add 16 kHz mono samples; queue every full chunk (waits while the inbox is full)."""
        if samples.size == 0:
            return
        self.last_audio_at = time.monotonic()
        self.audio_samples += samples.size
        self.pending = np.concatenate([self.pending, samples.astype(np.float32, copy=False)])
        size = self.geometry.samples_per_chunk
        while self.pending.size >= size:
            chunk, self.pending = self.pending[:size], self.pending[size:]
            span = self.span()
            self.segment_samples += size
            await self.scheduler.submit(self.lane, ChunkJob(chunk, self.geometry.new_frames, self.lane.epoch,
                                                            span=span))

    def span(self, total: int | None = None, idle: bool = False) -> AudioSpan:
        """The audio span of the next chunk queued for this segment."""
        first = self.segment_samples // self.geometry.samples_per_frame
        return AudioSpan(self.segment_origin, first, self.input_rate, self.geometry.fps, total, idle)

    async def flush(self, input_samples: int | None = None) -> int:
        """End the segment: queue the partial chunk padded with silence. Returns the segment's frames.

        `input_samples`, the segment's length at the client's rate, ends its last frame's span.
        With no partial chunk left, a marker goes through the queue instead (no model call), so
        the end of the segment is still reported after its last frame.
        """
        frames = math.ceil((self.segment_samples + self.pending.size) / self.geometry.samples_per_frame)
        keep = math.ceil(self.pending.size / self.geometry.samples_per_frame)
        chunk = None
        if self.pending.size:
            chunk = np.zeros(self.geometry.samples_per_chunk, dtype=np.float32)
            chunk[: self.pending.size] = self.pending
        span = self.span(input_samples)
        self.pending = np.zeros(0, dtype=np.float32)
        self.segment_samples = 0
        await self.scheduler.submit(self.lane, ChunkJob(chunk, keep, self.lane.epoch, segment_end=True, span=span))
        return frames

    async def push_idle(self) -> None:
        """Queue one chunk of silence (idle frames while no audio arrives)."""
        silence = np.zeros(self.geometry.samples_per_chunk, dtype=np.float32)
        await self.scheduler.submit(self.lane, ChunkJob(silence, self.geometry.new_frames, self.lane.epoch,
                                                        idle=True, span=self.span(idle=True)))

    def interrupt(self) -> None:
        """Drop pending and queued audio and undelivered frames."""
        self.interrupts += 1
        self.pending = np.zeros(0, dtype=np.float32)
        self.segment_samples = 0
        self.scheduler.drop_queued(self.lane)

    async def next_result(self) -> ChunkResult | None:
        """The next generated chunk, in order; None after `end` once all were taken."""
        result = await self.lane.outbox.get()
        self.scheduler.result_taken()
        return result

    async def wait_drained(self) -> None:
        """Until nothing is queued, computing or being encoded (results may still sit in the outbox)."""
        while self.lane.working:
            self.lane.changed.clear()
            await self.lane.changed.wait()

    async def end(self) -> None:
        """No more audio: once every queued chunk is generated, `next_result` returns None after the last."""
        await self.wait_drained()
        self.lane.outbox.put_nowait(None)  # type: ignore[arg-type]  # the end marker

    @property
    def epoch(self) -> int:
        """Bumped by every interrupt: results of an older epoch are dropped, not sent."""
        return self.lane.epoch

    def is_idle(self, quiet_s: float) -> bool:
        """No audio for `quiet_s`, nothing pending, queued, in flight or waiting to be sent."""
        quiet = time.monotonic() - self.last_audio_at > quiet_s
        return quiet and not self.lane.busy and self.pending.size == 0

    def close(self) -> None:
        self.scheduler.close_lane(self.lane)


class PcmInput:
    """Client PCM16 at its own rate/channels -> 16 kHz mono, with exact per-segment sample counts."""

    def __init__(self, rate: int, channels: int):
        self.rate, self.channels = rate, channels
        self.resampler = PcmResampler(rate, channels)
        self.emitted = 0
        self.before = 0  # client samples of the segments already ended or interrupted

    @property
    def offset(self) -> int:
        """Client samples (per channel) received so far: where the next segment begins."""
        return self.before + self.resampler.samples_in

    @property
    def segment_input(self) -> int:
        """Client samples of the current segment so far."""
        return self.resampler.samples_in

    def push(self, pcm: bytes) -> np.ndarray:
        out = self.resampler.push(pcm)
        self.emitted += out.size
        return out

    def end_segment(self) -> np.ndarray:
        """The resampler's tail, trimmed or padded so the segment has exactly ceil(in * 16k / rate) samples."""
        tail = np.zeros(0, np.float32)
        if self.resampler.stream is not None:
            tail = self.resampler.push(b"", last=True)
        want = self.resampler.expected_output() - self.emitted
        if tail.size > want:
            tail = tail[: max(0, want)]
        elif tail.size < want:
            tail = np.concatenate([tail, np.zeros(want - tail.size, np.float32)])
        self.reset()
        return tail

    def reset(self) -> None:
        """A new segment: the next sample starts it (the current one ended or was interrupted)."""
        self.before += self.resampler.samples_in
        self.resampler = PcmResampler(self.rate, self.channels)
        self.emitted = 0

