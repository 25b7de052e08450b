"""Profiles: every threshold carries its source; the published FlashHead figures are the numbers."""

from __future__ import annotations

import pytest

from ops.acceptance.profiles import custom_scenario, get_profile, load_profiles, override
from ops.errors import UsageError


def test_every_threshold_of_every_profile_has_a_source() -> None:
    profiles = load_profiles()
    assert set(profiles) == {"rtx4090-lite", "rtx4090-lite-gpus", "rtx4090-pro", "reference-cpu"}
    for profile in profiles.values():
        assert profile.scenarios
        for scenario in profile.scenarios:
            assert scenario.thresholds
            for threshold in scenario.thresholds:
                assert len(threshold.source) > 20, (profile.name, scenario.name, threshold.metric)


def thresholds(profile: str) -> dict[tuple[str, int, str], float]:
    return {(s.mode, s.streams, t.metric): t.value for s in get_profile(profile).scenarios for t in s.thresholds}


def test_lite_holds_96_fps_single_stream_and_three_realtime_streams_at_25() -> None:
    lite = thresholds("rtx4090-lite")
    assert lite[("throughput", 1, "fps_per_stream")] == 96
    assert lite[("realtime", 3, "fps_per_stream")] == 25
    assert "RTX4090" in get_profile("rtx4090-lite").scenarios[0].thresholds[0].source


def test_pro_holds_10_fps() -> None:
    assert thresholds("rtx4090-pro") == {("throughput", 1, "fps_per_stream"): 10}


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as error:
        get_profile("rtx5090")
    assert "rtx4090-lite" in (error.value.remedy or "")


def test_command_line_values_override_a_profile_scenario() -> None:
    scenario = get_profile("rtx4090-lite").scenarios[1]
    changed = override(scenario, streams=2, duration_s=5, min_fps=30)
    assert (changed.streams, changed.duration_s) == (2, 5)
    fps = [t for t in changed.thresholds if t.metric == "fps_per_stream"]
    assert [(t.value, t.source) for t in fps] == [(30, "--min-fps on the command line")]
    assert len(changed.thresholds) == len(scenario.thresholds)


def test_bad_numbers_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        custom_scenario("throughput", 0, 10, 2, None)
    with pytest.raises(UsageError):
        custom_scenario("throughput", 1, -1, 2, None)


def test_a_profile_file_with_a_latency_bound_on_a_throughput_scenario_is_refused() -> None:
    from ops.acceptance.profiles import _profile

    body = {"scenarios": [{"name": "x", "mode": "throughput", "streams": 1, "duration_s": 5, "thresholds": {
        "max_p95_chunk_latency_ms": {"value": 900, "source": "a made-up bound for this test"}}}]}
    with pytest.raises(UsageError, match="only applies to realtime"):
        _profile("broken", body)


def test_a_threshold_without_a_source_is_refused() -> None:
    from ops.acceptance.profiles import _profile

    body = {"scenarios": [{"name": "x", "mode": "throughput", "streams": 1, "duration_s": 5,
                           "thresholds": {"min_fps_per_stream": {"value": 9}}}]}
    with pytest.raises(UsageError, match="has no source"):
        _profile("broken", body)


def test_a_per_gpu_scenario_scales_with_the_fleet_and_keeps_its_per_stream_thresholds() -> None:
    [scenario] = get_profile("rtx4090-lite-gpus").scenarios
    assert scenario.per_gpu and scenario.streams == 3
    fleet = scenario.for_gpus(4)
    assert (fleet.name, fleet.streams, fleet.gpus, fleet.per_gpu) == ("realtime-per-gpu-4-gpus", 12, 4, False)
    assert fleet.thresholds == scenario.thresholds
    assert scenario.for_gpus(None) is scenario
    single = get_profile("rtx4090-lite").scenarios[1].for_gpus(2)  # not per GPU: same streams, fleet checks on
    assert (single.streams, single.gpus) == (3, 2)
    assert override(scenario, streams=2).for_gpus(3).streams == 6  # --streams is per GPU here
    with pytest.raises(UsageError):
        scenario.for_gpus(30)  # 90 streams: beyond what one run opens
