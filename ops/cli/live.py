"""What `provision` shows while it runs: each step's start and apply, and the progress of long work.

On a terminal: rich progress bars with the bytes or build steps, rate, ETA and elapsed time. Text
on a pipe: one line per new phase, a progress line at most every 10 s per step. `--output json`:
every event as one JSON line on stderr. A step that has been silent for `--silence` seconds always
gets a line saying what it is still waiting on.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ops.output import escape

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ops.output import Output

PLAIN_EVERY_S = 10.0


class RunView:
    """Receives the runner's events (RunOptions.on_event) and draws them."""

    def __init__(self, output: Output):
        self.output = output
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.printed: dict[str, float] = {}

    def __call__(self, record: dict[str, Any]) -> None:
        if self.output.json:
            self.output.event(record)
            return
        event, step = record["event"], record.get("step", "")
        if event == "step_start":
            self._say(f"[dim]… {escape(step)}[/]")
        elif event == "step_apply":
            self._say(f"[yellow]→ {escape(step)}: applying {len(record.get('changes') or [])} change(s)[/]")
        elif event == "step" and step in self.tasks and self.bars is not None:
            self.bars.remove_task(self.tasks.pop(step))
        elif event == "progress":
            self._progress(step, record)

    def _progress(self, step: str, record: dict[str, Any]) -> None:
        kind, message = record["kind"], escape(str(record["message"]))
        if kind == "waiting":
            self._say(f"[yellow]… {escape(step)}: {message}[/]")
            return
        if self.output.interactive:
            bars = self._bars()
            if step not in self.tasks:
                self.tasks[step] = bars.add_task(step, total=None)
            counted = kind in ("download", "build")
            bars.update(self.tasks[step], description=f"{escape(step)}: {message}",
                        **({"total": record["total"], "completed": record["done"]} if counted else {}))
            return
        now = time.monotonic()
        if kind == "phase" or now - self.printed.get(step, 0.0) >= PLAIN_EVERY_S:
            self.printed[step] = now
            self._say(f"[dim]  {escape(step)}: {message} ({record.get('elapsed', 0):.0f} s)[/]")

    def _bars(self) -> Progress:
        if self.bars is None:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TaskProgressColumn(), TimeRemainingColumn(), TimeElapsedColumn(),
                                 console=self.output.err, transient=True)
            self.bars.start()
        return self.bars

    def _say(self, line: str) -> None:
        if self.bars is not None:
            self.bars.console.print(line)
        else:
            self.output.progress(line)

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None
