"""`accept fps`: concurrent streams in throughput or realtime mode, measured against thresholds."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.acceptance.audio import SAMPLE_RATE, fit_to_duration, load_pcm16
from ops.acceptance.checks import AcceptanceReport
from ops.acceptance.plot import ScenarioSeries
from ops.acceptance.profiles import METRICS, Scenario, Threshold
from ops.acceptance.streaming import StreamRun, stream_clip
from ops.acceptance.target import RunStopped, Target, probe
from ops.acceptance.timing import (
    expected_frames,
    frames_in_order,
    percentile,
    stream_metrics,
    warmup_frame_count,
)
from ops.errors import ConnectionFailed, UsageError

if TYPE_CHECKING:
    from inference.client import FlashheadClient

# At 1× pacing a stream that keeps up delivers exactly the audio's frame rate, measured over a
# window whose ends move with scheduling jitter; allow 2 % below the nominal rate for that.
REALTIME_FPS_ALLOWANCE = 0.02


async def run_fps(target: Target, scenarios: list[Scenario], image: Path, audio: Path,
                  profile: str | None = None, progress: Callable[[str], None] | None = None,
                  series: list[ScenarioSeries] | None = None) -> AcceptanceReport:
    """Probe the server, upload the avatar once, then run each scenario and judge its thresholds.

    `progress` (optional) hears one line as each scenario starts; `series` (optional) receives each
    scenario's timelines, for `accept fps --plot`.
    """
    for flag, path in (("--image", image), ("--audio", audio)):
        if not path.is_file():
            raise UsageError(f"{flag} {path}: no such file", f"pass {flag} PATH, or leave it out for the default")
    speech = load_pcm16(audio)
    report = AcceptanceReport("fps", target.url, profile=profile)
    started = time.perf_counter()
    try:
        async with target.client() as client:
            info = await probe(client, target, report)
            avatar_id = await _avatar(client, target, report, image)
            photo = image.read_bytes()
            for scenario in scenarios:
                if progress:
                    progress(f"{scenario.name}: {scenario.streams} {scenario.mode} stream(s), "
                             f"{scenario.warmup_s:g} s warm-up + {scenario.duration_s:g} s …")
                await _run_scenario(client, target, report, scenario, avatar_id, photo, speech, info, series)
    except RunStopped as stop:
        report.error = stop.error.to_dict()
        report.skip_rest(["avatar", *(name for s in scenarios for name in scenario_check_names(s))],
                         "not run: an earlier check failed")
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def scenario_check_names(scenario: Scenario) -> list[str]:
    """The checks a scenario reports, in order (listed as skipped when it cannot run)."""
    fleet = [f"{scenario.name}.pods"] if scenario.gpus else []
    return [f"{scenario.name}.streams", *fleet, f"{scenario.name}.frames",
            *(f"{scenario.name}.{t.metric}" for t in scenario.thresholds)]


async def _avatar(client: FlashheadClient, target: Target, report: AcceptanceReport, image: Path) -> str:
    started = time.perf_counter()
    try:
        avatar_id = await client.create_avatar(image)
    except Exception as exc:  # noqa: BLE001 - every failure is reported with a remedy
        error = target.error(exc)
        report.add("avatar", False, error.message, remedy=error.remedy, error=isinstance(error, ConnectionFailed))
        raise RunStopped(error) from None
    report.add("avatar", True, f"POST /v1/avatars → {avatar_id}", seconds=round(time.perf_counter() - started, 3))
    return avatar_id


async def _run_scenario(client: FlashheadClient, target: Target, report: AcceptanceReport, scenario: Scenario,
                        avatar_id: str, photo: bytes, speech: bytes, info: dict[str, Any],
                        series: list[ScenarioSeries] | None = None) -> None:
    names = scenario_check_names(scenario)
    capacity = _capacity(info)
    pods = scenario.gpus or 1
    if capacity is not None and scenario.streams > capacity * pods:
        where = f"{pods} pods of {capacity} streams each allow {capacity * pods}" if scenario.gpus else \
            f"the server allows {capacity} concurrent streams"
        report.add(names[0], False, f"{where}; {scenario.name} needs {scenario.streams}",
                   remedy="raise FLASHHEAD_MAX_STREAMS on the server, or run fewer --streams")
        report.skip_rest(names, "not run: too few stream slots")
        return
    pcm = fit_to_duration(speech, _whole_chunks(scenario.warmup_s + scenario.duration_s, info))
    realtime = scenario.mode == "realtime"
    refusals: list[str] = []
    # A fleet's pods each keep their own avatars: its streams send the photo inline (cached by content).
    source: dict[str, Any] = {"image": photo} if scenario.gpus else {"avatar_id": avatar_id}
    started = time.perf_counter()
    results = await asyncio.gather(*(stream_clip(client, pcm, realtime=realtime, seed=i,
                                                 on_refusal=lambda error, _n: refusals.append(str(error)), **source)
                                     for i in range(scenario.streams)), return_exceptions=True)
    seconds = round(time.perf_counter() - started, 3)
    runs = [r for r in results if isinstance(r, StreamRun)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        error = target.error(failures[0])
        report.add(names[0], False, f"{len(failures)} of {scenario.streams} streams failed: {error.message}",
                   remedy=error.remedy, seconds=seconds, error=isinstance(error, ConnectionFailed))
        report.skip_rest(names, "not run: a stream failed")
        if isinstance(error, ConnectionFailed):
            raise RunStopped(error)
        return
    report.add(names[0], True, f"{scenario.streams} {scenario.mode} stream(s) of "
               f"{scenario.warmup_s:g} s warm-up + {scenario.duration_s:g} s audio completed"
               + (f" ({len(refusals)} refusal(s) retried)" if refusals else ""), seconds=seconds,
               measured={"streams": scenario.streams, "mode": scenario.mode, "refusals": len(refusals)})
    per_pod = Counter(run.ready.instance or "unnamed" for run in runs if run.ready)
    if scenario.gpus:
        _pods_check(report, names[1], per_pod, capacity, scenario.gpus)
    fps, chunk = runs[0].timeline.fps, runs[0].timeline.chunk_frames
    warmup = warmup_frame_count(scenario.warmup_s, fps, chunk)
    if series is not None:
        series.append(ScenarioSeries(scenario.name, scenario.mode, [run.timeline for run in runs], warmup))
    per_stream = [{**stream_metrics(run.timeline, warmup, realtime), **_server_stats(run, warmup)}
                  for run in runs]
    aggregate = _aggregate(runs, warmup)
    report.measurements[scenario.name] = {
        "mode": scenario.mode, "streams": scenario.streams, "duration_s": scenario.duration_s,
        "warmup": _warmup(runs, per_stream, scenario.warmup_s, warmup), "aggregate_fps": aggregate,
        "per_stream": per_stream, "server_summaries": [run.summary_fields() for run in runs],
        "streams_per_pod": dict(sorted(per_pod.items())), "refusals": len(refusals),
        "capacity": None if capacity is None else {"per_pod": capacity, "pods": pods, "total": capacity * pods},
    }
    _frames_check(report, names[2 if scenario.gpus else 1], runs)
    for threshold in scenario.thresholds:
        _threshold_check(report, scenario, threshold, per_stream, aggregate)


def _pods_check(report: AcceptanceReport, name: str, per_pod: Counter[str], capacity: int | None,
                gpus: int) -> None:
    """Streams spread over the fleet's pods, none above a pod's capacity, no more pods than GPUs."""
    over = {pod: n for pod, n in per_pod.items() if capacity is not None and n > capacity}
    shown = ", ".join(f"{pod}: {n}" for pod, n in sorted(per_pod.items()))
    problems = [f"{pod} served {n} streams, above its capacity {capacity}" for pod, n in sorted(over.items())]
    if len(per_pod) > gpus:
        problems.append(f"{len(per_pod)} pods served streams, more than --gpus {gpus}")
    report.add(name, not problems, "; ".join(problems) or f"{len(per_pod)} pod(s): {shown}",
               measured={"streams_per_pod": dict(sorted(per_pod.items()))},
               threshold=f"at most {capacity} stream(s) a pod, at most {gpus} pods",
               remedy=None if not problems else "check the Service's endpoints (kubectl get endpointslices) and "
                                                "the pods' readiness probe (/readyz: room for one more stream)")


def _frames_check(report: AcceptanceReport, name: str, runs: list[StreamRun]) -> None:
    problems = []
    for number, run in enumerate(runs):
        in_order, detail = frames_in_order(run.timeline)
        want = expected_frames(run.samples, SAMPLE_RATE, run.timeline.fps)
        got = len(run.timeline.frames)
        if not in_order:
            problems.append(f"stream {number}: {detail}")
        elif abs(got - want) > 1:
            problems.append(f"stream {number}: {got} frames for {want:.1f} frames of audio")
    total = sum(len(run.timeline.frames) for run in runs)
    report.add(name, not problems, "; ".join(problems) or f"{total} frames in order, counts match the audio",
               measured={"frames": [len(run.timeline.frames) for run in runs]},
               threshold="indices 0…n-1 in order; count within one frame of the audio")


def _threshold_check(report: AcceptanceReport, scenario: Scenario, threshold: Threshold,
                     per_stream: list[dict[str, Any]], aggregate: float | None) -> None:
    values = [stream.get(_STREAM_KEYS.get(threshold.metric, threshold.metric)) for stream in per_stream]
    value = aggregate if threshold.metric == "aggregate_fps" else _worst(threshold, values)
    limit, shown = threshold.value, threshold.describe()
    if scenario.mode == "realtime" and threshold.metric == "fps_per_stream":
        limit = threshold.value * (1 - REALTIME_FPS_ALLOWANCE)
        shown += f" (−{REALTIME_FPS_ALLOWANCE:.0%} pacing jitter: {limit:g})"
    ok = value is not None and (value >= limit if threshold.bound == "min" else value <= limit)
    unit = METRICS[threshold.metric][0]
    measured: dict[str, Any] = {"value": value, "unit": unit}
    if threshold.metric != "aggregate_fps":
        measured["per_stream"] = values
    detail = f"{_show(value)} {unit}".strip() + (f" (per stream: {', '.join(_show(v) for v in values)})"
                                                if len(values) > 1 and threshold.metric != "aggregate_fps" else "")
    report.add(f"{scenario.name}.{threshold.metric}", ok, detail, measured=measured, threshold=shown,
               source=threshold.source,
               remedy=None if ok else f"{METRICS[threshold.metric][1]} is {_show(value)} {unit}; "
                                      f"needed {shown}. Check GPU load, the model type and the server's "
                                      "chunk metrics (flashhead_chunk_generation_seconds)")


_STREAM_KEYS = {"fps_per_stream": "fps"}


def _worst(threshold: Threshold, values: list[Any]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(min(values) if threshold.bound == "min" else max(values))


def _aggregate(runs: list[StreamRun], warmup: int) -> float | None:
    starts: list[float] = []
    ends: list[float] = []
    frames = 0
    for run in runs:
        timeline = run.timeline
        measured = timeline.frames[warmup:]
        start = timeline.frames[warmup - 1][2] if warmup else timeline.first_audio_at
        if not measured or start is None:
            return None
        starts.append(start)
        ends.append(measured[-1][2])
        frames += len(measured)
    span = max(ends) - min(starts)
    return round(frames / span, 3) if span > 0 else None


def _warmup(runs: list[StreamRun], per_stream: list[dict[str, Any]], warmup_s: float, frames: int) -> dict[str, Any]:
    seconds = []
    for run in runs:
        timeline = run.timeline
        if frames and len(timeline.frames) >= frames and timeline.first_audio_at is not None:
            seconds.append(round(timeline.frames[frames - 1][2] - timeline.first_audio_at, 3))
    return {"audio_s": warmup_s, "frames": frames, "seconds": seconds,
            "time_to_first_frame_s": [stream["time_to_first_frame_s"] for stream in per_stream],
            "excluded": "warm-up frames are not counted in fps, latency, lag or stalls"}


def _server_stats(run: StreamRun, warmup: int) -> dict[str, float | None]:
    """The server's own per-chunk numbers after warm-up: model time vs time queued behind others."""
    measured = [s for s in run.stats if s.first_frame >= warmup]
    generation = [float(s.generation_ms) for s in measured]
    queue = [float(s.queue_ms) for s in measured]
    return {"server_p50_generation_ms": _round(percentile(generation, 50)),
            "server_p95_generation_ms": _round(percentile(generation, 95)),
            "server_p95_queue_ms": _round(percentile(queue, 95))}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _whole_chunks(seconds: float, info: dict[str, Any]) -> float:
    """`seconds` rounded up to whole chunks, so no padded final chunk skews the rate."""
    fps, chunk = int(info.get("fps") or 25), int(info.get("chunk_frames") or 24)
    return math.ceil(round(seconds * fps / chunk, 6)) * chunk / fps


def _capacity(info: dict[str, Any]) -> int | None:
    """A pod's stream capacity from /v1/info: the measured limit when known, else max_streams."""
    capacity = info.get("capacity")
    if isinstance(capacity, dict):
        for key in ("stream_limit", "max_streams"):
            if isinstance(capacity.get(key), int):
                return int(capacity[key])
    value = info.get("max_streams")
    return value if isinstance(value, int) else None


def _show(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if isinstance(value, float) else str(value)
