"""Event-loop lag: how late the server's event loop wakes from a short sleep.

Every frame leaves through the event loop. When work runs on the loop itself (as WebSocket deflate
of every frame once did) or other threads keep the GIL from it, all streams' frames wait, and the
model's own speed no longer tells how fast the server is. The lag is sampled every `interval`
seconds into `flashhead_event_loop_lag_seconds` and summarised in /v1/info.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import numpy as np
from prometheus_client import Histogram

RECENT_SAMPLES = 500  # ten seconds at the default interval


class LoopLag:
    """Samples the running loop's wake-up delay; see the module docstring."""

    def __init__(self, histogram: Histogram, interval: float = 0.02):
        self.histogram = histogram
        self.interval = interval
        self.recent: deque[float] = deque(maxlen=RECENT_SAMPLES)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asleep_at = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - asleep_at - self.interval)
            self.recent.append(lag)
            self.histogram.observe(lag)

    def summary(self) -> dict[str, Any]:
        """p50 / p95 / max of the recent samples in milliseconds (None before the first)."""
        if not self.recent:
            return {"p50": None, "p95": None, "max": None, "samples": 0}
        values = np.array(self.recent) * 1000
        return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2),
                "max": round(float(values.max()), 2), "samples": int(values.size)}
