"""Acceptance profiles: FPS scenarios and their thresholds, each threshold with its source.

Profiles live in `profiles.yaml` next to this module (package data). A threshold is a metric
name with a `min_` or `max_` prefix; the FPS run measures the metric and compares.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from ops.errors import UsageError

MODES = ("throughput", "realtime")
REALTIME_ONLY = ("p95_chunk_latency_ms", "stalls")  # need audio paced at 1× to mean anything
# Metric name -> (unit, meaning) of what the FPS run measures per scenario.
METRICS: dict[str, tuple[str, str]] = {
    "fps_per_stream": ("fps", "generated frames per second of the slowest stream"),
    "aggregate_fps": ("fps", "generated frames per second of all streams together"),
    "p95_chunk_latency_ms": ("ms", "95th percentile from a chunk's last audio sent to its last frame received"),
    "time_to_first_frame_s": ("s", "slowest stream's time from its first audio sent to its first frame"),
    "stalls": ("", "times a stream's player would wait for a frame (most of any stream)"),
}


@dataclass(frozen=True)
class Threshold:
    """`metric` compared with `value`: at least (`min`) or at most (`max`); `source` says why."""

    metric: str
    bound: str  # min | max
    value: float
    source: str

    def passes(self, measured: float | None) -> bool:
        if measured is None:
            return False
        return measured >= self.value if self.bound == "min" else measured <= self.value

    def describe(self) -> str:
        return f"{self.metric} {'>=' if self.bound == 'min' else '<='} {_number(self.value)}"


@dataclass(frozen=True)
class Scenario:
    """One FPS measurement: `streams` concurrent streams of `duration_s` audio in `mode`.

    `per_gpu`: `streams` is per GPU of a fleet (one pod per GPU behind a Service); `for_gpus(n)`
    turns it into the run's total."""

    name: str
    mode: str
    streams: int
    duration_s: float
    warmup_s: float
    thresholds: tuple[Threshold, ...] = ()
    per_gpu: bool = False
    gpus: int | None = None  # run against a fleet of this many pods (one per GPU) behind one Service

    def for_gpus(self, gpus: int | None) -> Scenario:
        """The scenario against a fleet of `gpus` pods: per-GPU streams multiplied, the fleet checks on."""
        if not gpus:
            return self
        if not self.per_gpu:
            return dataclasses.replace(self, gpus=gpus)
        streams = self.streams * gpus
        _validate_numbers(self.mode, streams, self.duration_s, self.warmup_s, where=f"{self.name} on {gpus} GPUs")
        return dataclasses.replace(self, name=f"{self.name}-{gpus}-gpus", streams=streams, per_gpu=False, gpus=gpus)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model_type: str
    scenarios: tuple[Scenario, ...] = field(default_factory=tuple)


@lru_cache(maxsize=1)
def load_profiles() -> dict[str, Profile]:
    """All shipped profiles by name (validated; a broken file is a bug, raised as UsageError)."""
    import yaml

    text = resources.files("ops.acceptance").joinpath("profiles.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)["profiles"]
    return {name: _profile(name, body) for name, body in raw.items()}


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a UsageError listing the known ones."""
    profiles = load_profiles()
    if name not in profiles:
        raise UsageError(f"unknown profile {name!r}", f"use one of: {', '.join(profiles)}")
    return profiles[name]


def custom_scenario(mode: str, streams: int, duration_s: float, warmup_s: float,
                    min_fps: float | None) -> Scenario:
    """A scenario from command-line options (no profile); `min_fps` becomes its one threshold."""
    _validate_numbers(mode, streams, duration_s, warmup_s, where="options")
    thresholds = () if min_fps is None else (
        Threshold("fps_per_stream", "min", float(min_fps), "--min-fps on the command line"),)
    return Scenario(f"{streams}-stream-{mode}", mode, streams, duration_s, warmup_s, thresholds)


def override(scenario: Scenario, *, streams: int | None = None, duration_s: float | None = None,
             warmup_s: float | None = None, min_fps: float | None = None) -> Scenario:
    """A profile scenario with some values replaced from the command line."""
    thresholds = scenario.thresholds
    if min_fps is not None:
        kept = tuple(t for t in thresholds if t.metric != "fps_per_stream")
        thresholds = (Threshold("fps_per_stream", "min", float(min_fps), "--min-fps on the command line"),
                      *kept)
    changed = Scenario(scenario.name, scenario.mode, streams or scenario.streams,
                       duration_s or scenario.duration_s,
                       scenario.warmup_s if warmup_s is None else warmup_s, thresholds, scenario.per_gpu)
    _validate_numbers(changed.mode, changed.streams, changed.duration_s, changed.warmup_s, where="options")
    return changed


def _profile(name: str, body: dict[str, Any]) -> Profile:
    scenarios = tuple(_scenario(name, item) for item in body.get("scenarios", []))
    return Profile(name, str(body.get("description", "")), str(body.get("model_type", "lite")), scenarios)


def _scenario(profile: str, body: dict[str, Any]) -> Scenario:
    where = f"profile {profile}, scenario {body.get('name')}"
    thresholds = []
    for key, spec in (body.get("thresholds") or {}).items():
        bound, _, metric = key.partition("_")
        if bound not in ("min", "max") or metric not in METRICS:
            raise UsageError(f"{where}: unknown threshold {key!r}",
                             f"use min_/max_ with one of: {', '.join(METRICS)}")
        if metric in REALTIME_ONLY and body.get("mode") != "realtime":
            raise UsageError(f"{where}: {key} only applies to realtime scenarios", "set mode: realtime")
        if not str(spec.get("source", "")).strip():
            raise UsageError(f"{where}: threshold {key} has no source", "say where the number comes from")
        thresholds.append(Threshold(metric, bound, float(spec["value"]), " ".join(str(spec["source"]).split())))
    per_gpu = "streams_per_gpu" in body
    streams = int(body["streams_per_gpu"] if per_gpu else body["streams"])
    scenario = Scenario(str(body["name"]), str(body["mode"]), streams, float(body["duration_s"]),
                        float(body.get("warmup_s", 2.0)), tuple(thresholds), per_gpu)
    _validate_numbers(scenario.mode, scenario.streams, scenario.duration_s, scenario.warmup_s, where=where)
    return scenario


def _validate_numbers(mode: str, streams: int, duration_s: float, warmup_s: float, *, where: str) -> None:
    if mode not in MODES:
        raise UsageError(f"{where}: mode {mode!r} is not one of {', '.join(MODES)}")
    if streams < 1 or streams > 64:
        raise UsageError(f"{where}: streams must be 1-64, not {streams}")
    if duration_s <= 0 or warmup_s < 0:
        raise UsageError(f"{where}: duration must be positive and warm-up not negative",
                         "e.g. --duration 20 --warmup 2")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
