"""ops/fleet.py: hosts in parallel up to --forks, the worst exit code, --max-fail-percentage."""

from __future__ import annotations

import threading
import time

import pytest

from ops.errors import ExitCode
from ops.fleet import SEVERITY, run_on_hosts, worst_exit_code
from ops.inventory import Host


def hosts(count: int) -> list[Host]:
    return [Host(name=f"h{index}", address=f"10.0.0.{index}") for index in range(count)]


def test_every_exit_code_has_a_rank() -> None:
    assert sorted(SEVERITY) == sorted(ExitCode)


@pytest.mark.parametrize(("codes", "worst"), [
    ([], ExitCode.OK),
    ([ExitCode.OK, None], ExitCode.OK),
    ([ExitCode.OK, ExitCode.CHANGES_PENDING], ExitCode.CHANGES_PENDING),
    ([ExitCode.CHANGES_PENDING, ExitCode.CHECK_FAILED], ExitCode.CHECK_FAILED),
    ([ExitCode.CHECK_FAILED, ExitCode.LOCKED, ExitCode.OK], ExitCode.LOCKED),
    ([ExitCode.LOCKED, ExitCode.REMOTE_COMMAND], ExitCode.REMOTE_COMMAND),
    ([ExitCode.REMOTE_COMMAND, ExitCode.CONNECTION], ExitCode.CONNECTION),
    ([ExitCode.CONNECTION, ExitCode.USAGE], ExitCode.USAGE),
    ([ExitCode.USAGE, ExitCode.INTERNAL, ExitCode.OK], ExitCode.INTERNAL),
])
def test_worst_exit_code(codes: list[ExitCode | None], worst: ExitCode) -> None:
    assert worst_exit_code(codes) == worst


def test_hosts_run_at_most_forks_at_a_time_and_outcomes_keep_host_order() -> None:
    running, peak, lock = 0, 0, threading.Lock()
    both_running = threading.Barrier(2, timeout=10)

    def work(host: Host) -> ExitCode:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        both_running.wait() if host.name in ("h0", "h1") else None  # proves two run at once
        time.sleep(0.01)
        with lock:
            running -= 1
        return ExitCode.REMOTE_COMMAND if host.name == "h3" else ExitCode.OK

    outcomes = run_on_hosts(hosts(6), work, forks=2)
    assert peak == 2
    assert [o.host.name for o in outcomes] == ["h0", "h1", "h2", "h3", "h4", "h5"]
    assert [o.exit_code for o in outcomes].count(ExitCode.REMOTE_COMMAND) == 1
    assert not any(o.skipped for o in outcomes)


@pytest.mark.parametrize(("limit", "started"), [
    (None, 5),  # no limit: every host runs
    (100, 5),
    (40, 4),  # 1/5 = 20 % ok, 2/5 = 40 % not above 40 %, 3/5 = 60 % stops: h0..h3 ran
    (20, 3),  # 2/5 = 40 % > 20 %: after h0, h1, h2 (failures at h0 and h2)
    (0, 1),  # the first failure stops everything
])
def test_max_fail_percentage_stops_starting_new_hosts(limit: float | None, started: int) -> None:
    failing = {"h0", "h2", "h3"}

    def work(host: Host) -> ExitCode:
        return ExitCode.REMOTE_COMMAND if host.name in failing else ExitCode.OK

    outcomes = run_on_hosts(hosts(5), work, forks=1, max_fail_percentage=limit)
    assert [o.host.name for o in outcomes if not o.skipped] == [f"h{i}" for i in range(started)]
    assert all(o.exit_code is None for o in outcomes if o.skipped)


def test_pending_changes_are_not_failures() -> None:
    outcomes = run_on_hosts(hosts(3), lambda host: ExitCode.CHANGES_PENDING, forks=1, max_fail_percentage=0)
    assert [o.exit_code for o in outcomes] == [ExitCode.CHANGES_PENDING] * 3


def test_a_bug_in_the_work_is_raised_after_the_started_hosts_finish() -> None:
    finished: list[str] = []
    all_started = threading.Barrier(3, timeout=10)  # the bug comes once every host runs (a loaded CI machine
    # may otherwise not have started h2 yet, and a host not started is rightly never started)

    def work(host: Host) -> ExitCode:
        all_started.wait()
        if host.name == "h0":
            raise RuntimeError("bug")
        time.sleep(0.05)
        finished.append(host.name)
        return ExitCode.OK

    with pytest.raises(RuntimeError, match="bug"):
        run_on_hosts(hosts(3), work, forks=3)
    assert sorted(finished) == ["h1", "h2"]


def test_after_a_bug_no_other_host_starts() -> None:
    started: list[str] = []

    def work(host: Host) -> ExitCode:
        started.append(host.name)
        if host.name == "h0":
            raise RuntimeError("bug")
        return ExitCode.OK

    with pytest.raises(RuntimeError, match="bug"):
        run_on_hosts(hosts(3), work, forks=1)
    assert started == ["h0"]
