"""The stream arithmetic on hand-made timelines: FPS, warm-up, chunk latency, lag, stalls."""

from __future__ import annotations

import pytest

from ops.acceptance.timing import (
    Timeline,
    chunk_latencies_ms,
    count_stalls,
    frames_in_order,
    lag_growth,
    percentile,
    stream_metrics,
    warmup_frame_count,
)

RATE, FPS, CHUNK = 16000, 25, 24


def realtime_timeline(chunks: int, generation_s: float, extra_per_chunk_s: float = 0.0) -> Timeline:
    """Audio paced at 1× in 40 ms packets from t=0; chunk k's frames arrive together when its audio
    is complete plus `generation_s` (+ k × `extra_per_chunk_s`, a server falling behind)."""
    timeline = Timeline(RATE, FPS, CHUNK)
    packet = RATE // FPS
    for n in range(1, chunks * CHUNK + 1):
        timeline.sent.append((n * packet, n / FPS))
    for k in range(chunks):
        arrival = (k + 1) * CHUNK / FPS + generation_s + k * extra_per_chunk_s
        timeline.frames += [(k * CHUNK + i, k, arrival + i * 0.001) for i in range(CHUNK)]
    return timeline


def test_warmup_rounds_up_to_whole_chunks() -> None:
    assert warmup_frame_count(0, FPS, CHUNK) == 0
    assert warmup_frame_count(0.5, FPS, CHUNK) == 24
    assert warmup_frame_count(2.0, FPS, CHUNK) == 72  # 50 frames -> 3 chunks


def test_a_stream_that_keeps_up_measures_the_audio_rate_and_no_stalls() -> None:
    metrics = stream_metrics(realtime_timeline(10, generation_s=0.2), warmup_frames=24)
    assert metrics["fps"] == pytest.approx(25.0, rel=0.01)
    assert metrics["measured_frames"] == 9 * 24
    assert metrics["p95_chunk_latency_ms"] == pytest.approx(200 + 23, abs=2)  # last frame of the chunk
    assert metrics["stalls"] == 0
    assert metrics["lag_growth_s"] == pytest.approx(0.0, abs=0.001)
    assert metrics["time_to_first_frame_s"] == pytest.approx(0.96 + 0.2 - 0.04, abs=0.001)


def test_a_stream_falling_behind_shows_lag_growth_stalls_and_low_fps() -> None:
    timeline = realtime_timeline(10, generation_s=0.2, extra_per_chunk_s=0.3)
    metrics = stream_metrics(timeline, warmup_frames=24)
    assert metrics["fps"] < 24
    assert metrics["stalls"] > 0
    assert lag_growth(timeline, 24) == pytest.approx(8 * 0.3, abs=0.01)


def test_warmup_frames_are_excluded_from_fps_and_latency() -> None:
    timeline = realtime_timeline(6, generation_s=0.1)
    shifted = [(i, c, t + (5.0 if c == 0 else 0.0)) for i, c, t in timeline.frames]  # a slow first chunk …
    timeline.frames = sorted(shifted, key=lambda f: f[0])
    assert max(chunk_latencies_ms(timeline, 0)) > 4000
    assert max(chunk_latencies_ms(timeline, 24)) < 200  # … does not count once excluded


def test_throughput_fps_is_frames_over_the_measured_window() -> None:
    timeline = Timeline(RATE, FPS, CHUNK, sent=[(RATE * 4, 0.0)])
    timeline.frames = [(i, i // CHUNK, 0.5 + i * 0.01) for i in range(96)]  # 100 frames/s after 0.5 s
    metrics = stream_metrics(timeline, warmup_frames=24)
    assert metrics["fps"] == pytest.approx(100.0, rel=0.001)
    assert metrics["time_to_first_frame_s"] == 0.5


def test_stalls_count_each_wait_once_then_rebuffer() -> None:
    timeline = Timeline(RATE, FPS, CHUNK)
    times = [i * 0.04 for i in range(10)] + [i * 0.04 + 1.0 for i in range(10, 20)]  # one 1 s hole
    timeline.frames = [(i, 0, t) for i, t in enumerate(times)]
    assert count_stalls(timeline, 0, buffer_s=0.25) == 1
    assert count_stalls(timeline, 0, buffer_s=1.5) == 0


def test_frames_in_order_names_the_first_wrong_index() -> None:
    timeline = Timeline(RATE, FPS, CHUNK, frames=[(0, 0, 0.0), (1, 0, 0.1), (3, 0, 0.2)])
    ok, detail = frames_in_order(timeline)
    assert not ok and "frame #2 carried index 3" in detail


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([], 95) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 95) == 95.0


def test_throughput_streams_report_no_latency_lag_or_stalls() -> None:
    timeline = realtime_timeline(4, generation_s=0.1)
    metrics = stream_metrics(timeline, warmup_frames=24, realtime=False)
    assert metrics["fps"] is not None
    assert not {"p95_chunk_latency_ms", "stalls", "max_frame_lag_s"} & set(metrics)
