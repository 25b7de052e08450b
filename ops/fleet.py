"""Run one piece of work on many hosts at once: a thread per host, at most `forks` at a time.

Each host's work runs in its own thread from a `concurrent.futures` pool and keeps its own
connection, lock and event log (paramiko/fabric are thread-safe per connection). Like Ansible's
`max_fail_percentage`: once the share of failed hosts exceeds the limit, hosts not yet started are
not started and come back as skipped. The run's exit code is the worst host's, by SEVERITY.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ops.errors import ExitCode

if TYPE_CHECKING:
    from ops.inventory import Host

DEFAULT_FORKS = 5
# Worst first. A bug or a wrong command line outranks what any host did; a host that could not be
# reached, then one whose run failed part-way, then one held by another run; a verdict (check failed)
# and pending changes are findings about a healthy run, OK is last.
SEVERITY = (ExitCode.INTERNAL, ExitCode.USAGE, ExitCode.CONNECTION, ExitCode.REMOTE_COMMAND, ExitCode.CLUSTER,
            ExitCode.ROLLOUT, ExitCode.LOCKED, ExitCode.CHECK_FAILED, ExitCode.CHANGES_PENDING, ExitCode.OK)
NOT_FAILED = (ExitCode.OK, ExitCode.CHANGES_PENDING)  # what `--max-fail-percentage` does not count


def worst_exit_code(codes: Iterable[ExitCode | None]) -> ExitCode:
    """The most severe of the hosts' exit codes (skipped hosts, None, count for nothing)."""
    return min((code for code in codes if code is not None), key=SEVERITY.index, default=ExitCode.OK)


@dataclass
class HostOutcome:
    """How one host's work ended: its exit code, or None when it was never started (skipped)."""

    host: Host
    exit_code: ExitCode | None = None
    seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        return self.exit_code is None

    @property
    def failed(self) -> bool:
        return self.exit_code is not None and self.exit_code not in NOT_FAILED


class FailureBudget:
    """Counts failed hosts; says when no new host may start (`--max-fail-percentage`)."""

    def __init__(self, total: int, max_fail_percentage: float | None):
        self.total, self.limit = total, max_fail_percentage
        self.failed = 0
        self._lock = threading.Lock()

    def record(self, outcome: HostOutcome) -> None:
        with self._lock:
            self.failed += outcome.failed

    @property
    def exceeded(self) -> bool:
        with self._lock:
            return self.limit is not None and self.failed * 100 > self.limit * self.total


def run_on_hosts(hosts: list[Host], work: Callable[[Host], ExitCode], *, forks: int = DEFAULT_FORKS,
                 max_fail_percentage: float | None = None,
                 on_start: Callable[[Host], None] | None = None) -> list[HostOutcome]:
    """Run `work(host)` for every host, `forks` at a time; outcomes in the order of `hosts`.

    `work` must turn its host's errors into an exit code itself (each host reports its own failure);
    an exception escaping it is a bug and is re-raised once every started host has finished."""
    budget = FailureBudget(len(hosts), max_fail_percentage)
    bug = threading.Event()  # a pool thread may take the next host before the caller sees the bug: it checks this

    def attempt(host: Host) -> HostOutcome:
        if budget.exceeded or bug.is_set():
            return HostOutcome(host)
        if on_start:
            on_start(host)
        started = time.monotonic()
        outcome = HostOutcome(host, ExitCode.INTERNAL)
        try:
            outcome.exit_code = work(host)
        except BaseException:
            bug.set()
            raise
        finally:
            outcome.seconds = time.monotonic() - started
            budget.record(outcome)
        return outcome

    pool = ThreadPoolExecutor(max_workers=max(1, forks), thread_name_prefix="flashhead-host")
    futures = [pool.submit(attempt, host) for host in hosts]
    try:
        return [future.result() for future in futures]
    except BaseException:
        # Ctrl-C or a bug: start no other host; those running finish their current work (every
        # provisioning step is safe to re-run, and a host's lock is released by its own thread).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
