"""Pure arithmetic over one stream's timeline: FPS, chunk latency, frame lag, stalls.

A `Timeline` is what a client observes: when each audio packet left (monotonic seconds and the
input-sample position it ended at) and when each frame arrived. Nothing here does I/O, so the
definitions are testable with hand-made timelines.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

PLAYOUT_BUFFER_S = 0.25  # a player starts this long after the first frame (a small jitter buffer)


@dataclass
class Timeline:
    """One stream as the client saw it. Times are `time.monotonic()` seconds."""

    sample_rate: int  # input audio samples per second (per channel)
    fps: int = 25
    chunk_frames: int = 24
    sent: list[tuple[int, float]] = field(default_factory=list)  # (samples sent so far, time)
    frames: list[tuple[int, int, float]] = field(default_factory=list)  # (index, chunk, received at)
    _ends: list[int] = field(default_factory=list, repr=False)

    @property
    def first_audio_at(self) -> float | None:
        return self.sent[0][1] if self.sent else None

    def audio_sent_at(self, sample: int) -> float | None:
        """When the packet holding input sample number `sample` (0-based) was sent."""
        if len(self._ends) != len(self.sent):
            self._ends = [end for end, _ in self.sent]
        position = bisect.bisect_right(self._ends, sample)
        if position < len(self.sent):
            return self.sent[position][1]
        return self.sent[-1][1] if self.sent else None

    def frame_audio_end(self, index: int) -> int:
        """The last input sample a frame depends on (its audio ends at (index+1)/fps seconds)."""
        total = self.sent[-1][0] if self.sent else 0
        return min(math.ceil((index + 1) * self.sample_rate / self.fps), total) - 1


def warmup_frame_count(warmup_s: float, fps: int, chunk_frames: int) -> int:
    """Frames excluded as warm-up: `warmup_s` rounded up to whole chunks."""
    if warmup_s <= 0:
        return 0
    return math.ceil(warmup_s * fps / chunk_frames) * chunk_frames


def frames_in_order(timeline: Timeline) -> tuple[bool, str]:
    """Frames arrived with indices 0, 1, 2 … and non-decreasing chunk numbers."""
    for position, (index, chunk, _) in enumerate(timeline.frames):
        if index != position:
            return False, f"frame #{position} carried index {index}"
        if position and chunk < timeline.frames[position - 1][1]:
            return False, f"frame {index} went back to chunk {chunk}"
    return True, f"{len(timeline.frames)} frames, indices 0…{len(timeline.frames) - 1}"


def expected_frames(samples: int, sample_rate: int, fps: int) -> float:
    """Frames the audio is worth (may be fractional; the server rounds to whole frames)."""
    return samples * fps / sample_rate


def stream_metrics(timeline: Timeline, warmup_frames: int, realtime: bool = True) -> dict[str, Any]:
    """Measurements of one stream; warm-up frames excluded except for time to first frame.

    Latency, lag and stalls only mean something when the audio was paced (`realtime`): with
    audio sent all at once they measure the queue, so they are left out.
    """
    frames = timeline.frames
    first_audio = timeline.first_audio_at
    metrics: dict[str, Any] = {
        "frames": len(frames),
        "warmup_frames": min(warmup_frames, len(frames)),
        "time_to_first_frame_s": _r(frames[0][2] - first_audio) if frames and first_audio is not None else None,
    }
    measured = frames[warmup_frames:]
    start = frames[warmup_frames - 1][2] if warmup_frames else first_audio
    if not measured or start is None:
        metrics.update(measured_frames=0, fps=None, measured_seconds=None)
        return metrics
    span = measured[-1][2] - start
    metrics.update(measured_frames=len(measured), measured_seconds=_r(span),
                   fps=_r(len(measured) / span) if span > 0 else None)
    if not realtime:
        return metrics
    latencies = chunk_latencies_ms(timeline, warmup_frames)
    metrics.update(chunks=len(latencies), p50_chunk_latency_ms=_r(percentile(latencies, 50)),
                   p95_chunk_latency_ms=_r(percentile(latencies, 95)),
                   max_chunk_latency_ms=_r(max(latencies)) if latencies else None)
    lags = [lag for _, lag in frame_lags(timeline, warmup_frames)]
    metrics.update(max_frame_lag_s=_r(max(lags)) if lags else None,
                   lag_growth_s=_r(lag_growth(timeline, warmup_frames)),
                   stalls=count_stalls(timeline, warmup_frames))
    return metrics


def chunk_latencies_ms(timeline: Timeline, warmup_frames: int = 0) -> list[float]:
    """Per chunk: from sending the audio its last frame needs to receiving that frame."""
    last_of_chunk: dict[int, tuple[int, float]] = {}
    for index, chunk, received in timeline.frames[warmup_frames:]:
        last_of_chunk[chunk] = (index, received)
    latencies = []
    for index, received in last_of_chunk.values():
        sent = timeline.audio_sent_at(timeline.frame_audio_end(index))
        if sent is not None:
            latencies.append((received - sent) * 1000)
    return latencies


def frame_lags(timeline: Timeline, warmup_frames: int = 0) -> list[tuple[int, float]]:
    """(index, seconds) from sending a frame's audio to receiving the frame, per measured frame."""
    lags = []
    for index, _, received in timeline.frames[warmup_frames:]:
        sent = timeline.audio_sent_at(timeline.frame_audio_end(index))
        if sent is not None:
            lags.append((index, received - sent))
    return lags


def lag_growth(timeline: Timeline, warmup_frames: int = 0) -> float | None:
    """Lag of the last measured chunk minus lag of the first: > 0 when a stream falls behind."""
    lags = frame_lags(timeline, warmup_frames)
    size = timeline.chunk_frames
    if len(lags) < 2 * size:
        return None
    first = [lag for _, lag in lags[:size]]
    last = [lag for _, lag in lags[-size:]]
    return sum(last) / len(last) - sum(first) / len(first)


def count_stalls(timeline: Timeline, warmup_frames: int = 0, buffer_s: float = PLAYOUT_BUFFER_S) -> int:
    """Times a 1× player would wait: it starts `buffer_s` after the first measured frame arrives
    and shows one frame every 1/fps; a late frame is a stall, after which it re-buffers."""
    frames = timeline.frames[warmup_frames:]
    if not frames:
        return 0
    period = 1 / timeline.fps
    origin_index, origin_time = frames[0][0], frames[0][2] + buffer_s
    stalls = 0
    for index, _, received in frames:
        due = origin_time + (index - origin_index) * period
        if received > due + 1e-9:
            stalls += 1
            origin_index, origin_time = index, received + buffer_s
    return stalls


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
