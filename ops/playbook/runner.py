"""Run a play on one host: check → (diff) → apply per step, timed, logged, locked, resumable.

A step whose check says done is never applied. `--check` runs checks only and changes nothing on
the host (no lock, no log, no state). In apply mode the run takes the host lock after preflight
(which prepares model_root), appends its events to `{state_dir}/events.jsonl` and records its
outcome in the state file, so the next run says where it resumes. A failure stops the play with
the command, its exit status and last output lines; every step is safe to re-run.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.errors import CheckFailed, FlashheadError, RemoteCommandFailed, SessionLost
from ops.playbook import lock
from ops.playbook.context import Context
from ops.playbook.eventlog import EventLog
from ops.playbook.expand import evaluate_when
from ops.playbook.hoststate import HostState
from ops.playbook.load import select_steps
from ops.playbook.model import (
    BLOCKED,
    CHANGED,
    FAILED,
    OK,
    PENDING,
    SKIPPED,
    Play,
    RunReport,
    State,
    StepResult,
    human_output,
)
from ops.playbook.progress import TRACE_PREAMBLE, StepProgress
from ops.playbook.remedies import remedy_for

if TYPE_CHECKING:
    from ops.connectors.base import Connector, Result
    from ops.tasks.base import Task

CHECK_TIMEOUT = 600.0
_FAILED_LINE = re.compile(r"^@@failed: (?P<command>.*) \(exit (?P<status>\d+)\)$", re.MULTILINE)
# On failure, name the command (its first line: a heredoc's body would bury the error) and its status.
APPLY_PREAMBLE = ("set -euo pipefail\nnl=$'\\n'\n"
                  "trap 'rc=$?; echo \"@@failed: ${BASH_COMMAND%%\"$nl\"*} (exit $rc)\" >&2' ERR\n")


@dataclass
class RunOptions:
    """How to run: `check` only or `apply`; which steps; secrets to pass by environment."""

    mode: str = "apply"
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    break_lock: bool = False
    source: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    on_event: Callable[[dict[str, Any]], None] | None = None
    parallel_checks: int = 8  # checks are read-only: run them all at once, use them while nothing changed
    silence_s: float = 60.0  # an apply silent this long says what it is still waiting on


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class Runner:
    """One run of a play against one connected host."""

    def __init__(self, conn: Connector, play: Play, options: RunOptions):
        from ops.tasks import load_task

        self.conn, self.play, self.options = conn, play, options
        self.state_dir = str(play.vars["state_dir"])
        self.run_id = new_run_id()
        self.hoststate = HostState(conn, self.state_dir)
        self.ctx = Context(conn, play.vars, self.hoststate, dict(options.secrets), source=options.source)
        self.log = EventLog(conn, self.state_dir, self.run_id, self.ctx.redactor)
        self.report = RunReport(host=conn.host.target, mode=options.mode, run_id=self.run_id)
        self.lock_path: str | None = None
        self.tasks: dict[str, Task] = {spec.name: load_task(spec.task) for spec in play.steps}
        self.prefetched: dict[str, Future[Checked]] = {}
        self.applied_any = False

    def run(self) -> RunReport:
        started = time.monotonic()
        steps = select_steps(self.play, self.options.only, self.options.skip)
        self.hoststate.load()
        last = self.hoststate.data.get("last_run") or {}
        if last.get("failed_step"):
            self.report.resumed_from = last["failed_step"]
        self._event("run_start", mode=self.options.mode, steps=[s.name for s in steps],
                    resumed_from=self.report.resumed_from)
        current = ""
        pool = self._prefetch(steps)
        blocked: list[FlashheadError] = []
        try:
            for spec in steps:
                if self.options.mode == "apply" and self.lock_path is None and spec.task != "preflight":
                    current = "lock"
                    self._take_lock()
                current = spec.name
                try:
                    self.report.steps.append(self._step(spec))
                except CheckFailed as error:
                    if self.options.mode != "check":
                        raise
                    # nothing changes in --check: report the blocker and what every other step would do
                    self.ctx.redact_error(error)
                    blocked.append(error)
                    self.report.steps.append(StepResult(spec.name, BLOCKED, summary=error.message))
                    self._event("step", step=spec.name, status=BLOCKED, error=error.to_dict())
            if blocked:
                self.report.error = blocked[0].to_dict()
            if self.options.mode == "apply" and self.lock_path is None:
                current = "lock"
                self._take_lock()
        except FlashheadError as error:
            self.ctx.redact_error(error)
            _name_failed_command(error)
            self.report.error = error.to_dict()
            if not self.report.steps or self.report.steps[-1].name != current:
                self.report.steps.append(StepResult(current, FAILED, summary=error.message))
            self._event("step", step=current, status=FAILED, error=self.report.error)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self.report.seconds = time.monotonic() - started
            self._finish()
        return self.report

    def _prefetch(self, steps: list[Any]) -> ThreadPoolExecutor | None:
        """Start every step's check at once (they only read). A step uses its prefetched result only
        while no earlier step has applied anything in this run; after a change, checks run afresh."""
        wanted = [s for s in steps if evaluate_when(s.when, self.play.vars)]
        if self.options.parallel_checks < 2 or len(wanted) < 2:
            return None
        pool = ThreadPoolExecutor(max_workers=min(self.options.parallel_checks, len(wanted)))
        for spec in wanted:
            ctx = dataclasses.replace(self.ctx, args=spec.args, step=spec.name)
            script = self.tasks[spec.name].check_script(ctx)
            self.prefetched[spec.name] = pool.submit(_timed_run, ctx, script)
        return pool

    def _step(self, spec: Any) -> StepResult:
        ctx = self.ctx
        ctx.args, ctx.step = spec.args, spec.name
        if not evaluate_when(spec.when, self.play.vars):
            return self._done(StepResult(spec.name, SKIPPED, summary=f"when: {spec.when}"), 0.0)
        task = self.tasks[spec.name]
        self._event("step_start", step=spec.name)
        prefetched = self.prefetched.pop(spec.name, None)
        state, check_seconds = self._check(task, None if self.applied_any else prefetched)
        started = time.monotonic() - check_seconds  # a prefetched check ran earlier, concurrently
        if state.done:
            return self._done(StepResult(spec.name, OK, summary=state.summary, warnings=state.warnings), started)
        if self.options.mode == "check":
            return self._done(StepResult(spec.name, PENDING, summary=state.summary, changes=state.changes,
                                         warnings=state.warnings), started)
        self._event("step_apply", step=spec.name, changes=state.changes)
        self.applied_any = True
        self._apply(task, state)
        after = self._check(task)[0] if task.recheck else State(done=True, summary=state.summary)
        if not after.done:
            raise CheckFailed(f"{spec.name}: applied, but the check still finds: {after.summary}",
                              "see the event log on the host; fix the cause and re-run (the step is re-runnable)",
                              details={"step": spec.name, "pending": after.changes})
        warnings = state.warnings + [w for w in after.warnings if w not in state.warnings]
        return self._done(StepResult(spec.name, CHANGED, summary=after.summary or state.summary,
                                     changes=state.changes, warnings=warnings), started)

    def _check(self, task: Task, prefetched: Future[Checked] | None = None) -> tuple[State, float]:
        """The step's check (prefetched or run now): its state and how long the check took."""
        if prefetched is not None:
            result, seconds, lost_once = prefetched.result()
        else:
            result, seconds, lost_once = _timed_run(self.ctx, task.check_script(self.ctx))
        if result.exit_status >= 2 or result.exit_status < 0:
            message, remedy = task.blocked(self.ctx, result)
            raise CheckFailed(message, remedy, details={"step": self.ctx.step, "exit_status": result.exit_status,
                                                        "output_tail": _tail(human_output(result.output))})
        state = task.parse_check(self.ctx, result)
        if lost_once:
            state.warnings.append(lost_once)
        return state, seconds

    def _apply(self, task: Task, state: State) -> None:
        ctx = self.ctx
        for path, content in task.files(ctx).items():
            upload(self.conn, path, content)
        task.prepare(ctx, state)
        with StepProgress(ctx.step, self._progress, silence_s=self.options.silence_s,
                          redact=ctx.redactor.text) as progress:
            result = ctx.run(APPLY_PREAMBLE + TRACE_PREAMBLE + task.apply_script(ctx, state), sudo=task.sudo_apply,
                             env=task.apply_env(ctx) or None, timeout=task.apply_timeout, on_output=progress.feed)
        task.after_apply(ctx, state, result)
        if self.lock_path:
            self.hoststate.save()
            self.log.flush()

    def _take_lock(self) -> None:
        holder = lock.holder_record(self.run_id)
        self.lock_path, took_over = lock.acquire(self.conn, self.state_dir, holder,
                                                 break_lock=self.options.break_lock)
        self.log.enabled = True
        self._event("lock", holder=holder, took_over=took_over)
        if took_over:
            self.report.notes.append(took_over)

    def _done(self, result: StepResult, started: float) -> StepResult:
        result.seconds = round(time.monotonic() - started, 3) if started else 0.0
        self._event("step", step=result.name, status=result.status, seconds=result.seconds,
                    summary=result.summary, changes=result.changes, warnings=result.warnings)
        return result

    def _progress(self, record: dict[str, Any]) -> None:
        """A progress event goes to the operator only (the host's event log keeps the outcomes)."""
        if self.options.on_event:
            self.options.on_event({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run_id": self.run_id,
                                   **record})

    def _event(self, event: str, **fields: Any) -> None:
        record = self.log.emit(event, **fields)
        if self.options.on_event:
            self.options.on_event(record)

    def _finish(self) -> None:
        if self.lock_path is None:
            return
        failed = next((s.name for s in self.report.steps if s.status == FAILED), None)
        self.hoststate.set("last_run", {"run_id": self.run_id, "ok": failed is None, "failed_step": failed,
                                        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self._event("run_end", ok=failed is None, seconds=round(self.report.seconds, 3), changed=self.report.changed)
        # state, events and the lock's release in one round trip
        save, state_text = self.hoststate.save_script()
        done = self.conn.run(save + self.log.flush_script() + lock.release_script(self.lock_path, self.run_id),
                             stdin=state_text, check=False)
        if not done.ok:
            lock.release(self.conn, self.lock_path, self.run_id)


def run_budget(play: Play, only: tuple[str, ...] = (), skip: tuple[str, ...] = (), check_only: bool = False) -> float:
    """The longest a run may take: its checks, plus every selected step's apply timeout when applying."""
    from ops.tasks import load_task

    steps = select_steps(play, only, skip)
    applies = 0.0 if check_only else sum(load_task(s.task).apply_timeout + 2 * CHECK_TIMEOUT for s in steps)
    return CHECK_TIMEOUT + applies


def run_play(conn: Connector, play: Play, options: RunOptions) -> RunReport:
    """Run `play` on the host behind `conn` and return what each step did."""
    return Runner(conn, play, options).run()


def upload(conn: Connector, remote_path: str, content: bytes, mode: int = 0o644) -> None:
    """Put bytes on the host (atomically, via the connector), creating the parent directory."""
    conn.run(["mkdir", "-p", str(Path(remote_path).parent)])
    with tempfile.NamedTemporaryFile(prefix="flashhead-upload-") as handle:
        handle.write(content)
        handle.flush()
        conn.put(handle.name, remote_path, mode=mode)


Checked = tuple["Result", float, str | None]  # a check's result, its seconds, the warning of a lost session


def _timed_run(ctx: Context, script: str) -> Checked:
    """A step's check, timed. A check only reads, so when its session is lost (the command ended without
    an exit status: the connection cut, a signal) it runs once more, and the loss comes back as a warning;
    a second loss fails the step as before. An apply is never repeated."""
    started = time.monotonic()
    try:
        result, lost_once = ctx.run(script, check=False, timeout=CHECK_TIMEOUT), None
    except SessionLost as lost:
        lost_once = f"the check's session was lost once ({lost.message.split(':')[0]}); it ran again"
        result = ctx.run(script, check=False, timeout=CHECK_TIMEOUT)
    return result, time.monotonic() - started, lost_once


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _name_failed_command(error: FlashheadError) -> None:
    """An apply script traps its failing command: show that command, not the whole script, and the
    remedy its output points to."""
    if not isinstance(error, RemoteCommandFailed):
        return
    error.remedy = error.remedy or remedy_for(error.output)
    error.details["output_tail"] = _tail(human_output(error.output))
    found = list(_FAILED_LINE.finditer(error.output))
    if found:
        command, status = found[-1]["command"], int(found[-1]["status"])
        error.message = f"command failed with exit status {status}: {command}"
        error.details["command"] = command
        error.details["exit_status"] = status
