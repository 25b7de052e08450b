"""Real-time capacity from measured chunk times: how many streams the model keeps at 1×.

The scheduler records how long each model call took for its batch size; `safe_streams` turns
those times into the number of concurrent streams whose chunks are all generated within a
margin of the chunk's own duration. The runtime admits new streams only below that number
(`FLASHHEAD_ADMISSION=realtime`), so one stream too many never makes every stream fall behind.
"""

from __future__ import annotations

import statistics
from collections import deque

RECENT = 16  # model calls remembered per batch size


class ChunkTimes:
    """Recent model-call durations per batch size; the median of each is what capacity uses."""

    def __init__(self) -> None:
        self._recent: dict[int, deque[float]] = {}

    def record(self, batch_size: int, seconds: float) -> None:
        self._recent.setdefault(batch_size, deque(maxlen=RECENT)).append(seconds)

    def medians(self) -> dict[int, float]:
        return {size: statistics.median(times) for size, times in sorted(self._recent.items()) if times}


def safe_streams(chunk_times: dict[int, float], chunk_seconds: float, max_batch: int,
                 margin: float = 0.9) -> int | None:
    """How many concurrent streams stay real time, from measured chunk times per batch size.

    Streams beyond `max_batch` take turns, so a round of S streams costs ceil(S / max_batch)
    batches. Batch time is modelled as a + b * B through the smallest and largest measured B
    (with one measurement, b = t / B: pessimistic, batching only helps). Real time means one round
    fits in `margin` of a chunk's duration. None before anything was measured.
    """
    if not chunk_times:
        return None
    budget = margin * chunk_seconds
    low, high = min(chunk_times), max(chunk_times)
    if low == high:
        slope, intercept = chunk_times[low] / low, 0.0
    else:
        slope = max((chunk_times[high] - chunk_times[low]) / (high - low), 1e-9)
        intercept = chunk_times[low] - slope * low

    def round_seconds(streams: int) -> float:
        full, rest = divmod(streams, max_batch)
        batches = [max_batch] * full + ([rest] if rest else [])
        return sum(intercept + slope * size for size in batches)

    streams = 0
    while streams < 1024 and round_seconds(streams + 1) <= budget:
        streams += 1
    return streams
