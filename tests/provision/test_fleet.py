"""A group provision over four real hosts (sshd in network namespaces), in parallel.

The tests share one fleet and run in order: the first run provisions all four at once while gpu-3
fails mid-play (a commit its git source lacks); `--max-fail-percentage` then stops before gpu-4;
with gpu-3 fixed a run finishes it and leaves the others alone; the last run changes nothing anywhere.
Besides the GPU steps, the runs leave out inference_module and verify (the server's pip install, four
times over, would double the time; test_play_ssh.py runs them on one host): what is under test is the
fan-out, and five real steps per host exercise it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.provision.fleet_stage import Fleet, start_fleet
from tests.provision.helpers import events
from tests.provision.stage import skip_args

BAD_COMMIT = "0" * 40
STEPS_LEFT_OUT = [*skip_args(), "--skip", "inference_module", "--skip", "verify"]
HOSTS = ["gpu-1", "gpu-2", "gpu-3", "gpu-4"]


@pytest.fixture(scope="module")
def fleet(shared_dir: Path, wheelhouse: Path, project_wheel: Path) -> Iterator[Fleet]:
    fleet = start_fleet(4, shared_dir, wheelhouse, project_wheel)
    yield fleet
    fleet.stop()


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    """The JSON Lines of a fleet run on stdout, by host."""
    try:
        documents = [json.loads(line) for line in result.stdout.splitlines()]
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON Lines (exit {result.returncode}):\n{result.stdout}\n{result.stderr}") from exc
    return {document["host"]: document for document in documents}


@pytest.fixture(scope="module")
def first_run(fleet: Fleet) -> subprocess.CompletedProcess[str]:
    fleet.host_vars["gpu-3"]["flashhead_commit"] = BAD_COMMIT  # host vars over the group's
    fleet.write_inventory()
    return fleet.cli("provision", "gpu", "--forks", "4", "--output", "json", *STEPS_LEFT_OUT)


def test_a_group_provisions_in_parallel_and_one_failing_host_stops_no_other(fleet: Fleet, first_run) -> None:
    assert first_run.returncode == 5, first_run.stdout + first_run.stderr  # the worst host's: a remote command
    by_host = lines(first_run)
    assert sorted(by_host) == HOSTS
    for name in ("gpu-1", "gpu-2", "gpu-4"):
        assert (by_host[name]["status"], by_host[name]["exit_code"]) == ("changed", 0), json.dumps(by_host[name])
        assert by_host[name]["result"]["ok"] and "checkpoints" in by_host[name]["result"]["changed"]
        assert (fleet.roots[name] / ".venv" / "bin" / "python").exists()
    failed = by_host["gpu-3"]
    assert (failed["status"], failed["exit_code"]) == ("failed", 5)
    steps = {step["name"]: step["status"] for step in failed["result"]["steps"]}
    assert steps["venv"] == "changed" and steps["flashhead_repo"] == "failed" and "checkpoints" not in steps
    # every host had its own lock (released) and event log; the failed run recorded where it stopped
    for name in HOSTS:
        assert not (fleet.roots[name] / ".flashhead" / "lock").exists()
        assert {event["event"] for event in events(fleet.roots[name])} >= {"run_start", "run_end"}
    # in parallel: every host had started before any had finished (events on stderr carry the host)
    streamed = [json.loads(line) for line in first_run.stderr.splitlines() if line.startswith("{")]
    first = {name: min(i for i, e in enumerate(streamed) if e.get("host") == name) for name in HOSTS}
    last = {name: max(i for i, e in enumerate(streamed) if e.get("host") == name) for name in HOSTS}
    assert max(first.values()) < min(last.values()), (first, last)


def test_max_fail_percentage_starts_no_host_past_it(fleet: Fleet, first_run) -> None:
    result = fleet.cli("provision", "gpu", "--forks", "1", "--max-fail-percentage", "20", *STEPS_LEFT_OUT)
    assert result.returncode == 5, result.stdout + result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ gpu-")}
    assert " ok " in rows["gpu-1"] and " ok " in rows["gpu-2"]
    assert " failed " in rows["gpu-3"]
    assert " skipped " in rows["gpu-4"]  # 1 failed of 4 = 25 % > 20 %
    assert "2 ok, 1 failed, 1 skipped" in result.stdout
    assert result.stderr.count("--- gpu-") == 1  # only the failed host wrote to stderr: its error, under its name
    assert "--- gpu-3 (" in result.stderr and f"git -C {fleet.roots['gpu-3']}" in result.stderr


def test_the_fixed_host_finishes_and_a_rerun_changes_nothing_anywhere(fleet: Fleet, first_run) -> None:
    del fleet.host_vars["gpu-3"]["flashhead_commit"]
    fleet.write_inventory()
    fixed = lines(fleet.cli("provision", "gpu", "--output", "json", *STEPS_LEFT_OUT))
    assert {name: doc["status"] for name, doc in fixed.items()} == {
        "gpu-1": "ok", "gpu-2": "ok", "gpu-3": "changed", "gpu-4": "ok"}, fixed["gpu-3"]
    again = fleet.cli("provision", "all", "--output", "json", *STEPS_LEFT_OUT)
    assert again.returncode == 0, again.stdout + again.stderr
    for name, document in lines(again).items():
        assert (document["status"], document["result"]["changed"]) == ("ok", []), (name, document)
