"""The event-loop lag sampler: a blocked loop shows up in the summary and the histogram."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry, Histogram

from inference.loop_lag import LoopLag


def sampler() -> tuple[LoopLag, CollectorRegistry]:
    registry = CollectorRegistry()
    return LoopLag(Histogram("lag_seconds", "lag", registry=registry, buckets=(0.05, 0.25, 1.0)), 0.01), registry


def test_summary_before_any_sample() -> None:
    lag, _ = sampler()
    assert lag.summary() == {"p50": None, "p95": None, "max": None, "samples": 0}


@pytest.mark.asyncio
async def test_a_blocked_loop_is_measured() -> None:
    lag, registry = sampler()
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(0.2)
    time.sleep(0.3)  # what a thread holding the GIL does to the loop
    await asyncio.sleep(0.1)
    task.cancel()
    summary = lag.summary()
    assert summary["samples"] >= 10
    assert summary["max"] >= 250
    assert summary["p50"] < 50  # the other samples were on time
    over_quarter_second = registry.get_sample_value("lag_seconds_count") - registry.get_sample_value(
        "lag_seconds_bucket", {"le": "0.25"})
    assert over_quarter_second == 1
