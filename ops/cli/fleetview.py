"""What a fleet run shows: one progress line per host, each host's output kept apart, a summary.

On a terminal (text mode): one rich progress line per host (waiting, its current step, its result).
Without a terminal, or with `--output json`: no progress at all. Each host writes into its own
buffers (`HostOutput`); they reach stdout/stderr in one piece when that host is done, so a failing
host never breaks into another's lines. With `--output json` each host is one JSON line on stdout
(JSON Lines, in the order hosts finish), and its streaming events are JSON lines on stderr that
carry `"host"`.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from typing import TYPE_CHECKING, Any

from ops.output import Output, escape, to_jsonable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ops.errors import FlashheadError
    from ops.fleet import HostOutcome
    from ops.inventory import Host
    from ops.output import Renderer

STATUS_STYLE = {"ok": "green", "changed": "yellow", "pending": "cyan", "failed": "red", "unreachable": "red",
                "skipped": "dim"}


class FleetBoard:
    """The shared screen of a fleet run: progress lines, finished hosts' output, JSON lines."""

    def __init__(self, output: Output, hosts: list[Host]):
        self.output = output
        self._lock = threading.Lock()
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        if output.interactive:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bars = Progress(SpinnerColumn(finished_text="•"), TextColumn("[bold]{task.fields[host]}[/]"),
                                 TimeElapsedColumn(), TextColumn("{task.description}"), console=output.err)
            for host in hosts:
                self.tasks[host.name] = self.bars.add_task("[dim]waiting[/]", host=escape(host.name), total=None,
                                                           start=False)
            self.bars.start()

    def started(self, host: Host) -> None:
        if self.bars is not None:
            self.bars.start_task(self.tasks[host.name])
            self.bars.update(self.tasks[host.name], description="[dim]connecting[/]")

    def update(self, host: Host, line: str) -> None:
        """The host's latest progress (rich markup, one line)."""
        if self.bars is not None:
            self.bars.update(self.tasks[host.name], description=line.splitlines()[0] if line else "")

    def event(self, record: dict[str, Any]) -> None:
        """A streaming event (JSON mode): one whole line on stderr."""
        with self._lock:
            sys.stderr.write(json.dumps(to_jsonable(record)) + "\n")
            sys.stderr.flush()

    def finished(self, host: Host, status: str, exit_code: int, host_output: HostOutput,
                 document: dict[str, Any] | None) -> None:
        """Show a finished host: its JSON line, or its buffered text in one piece."""
        with self._lock:
            if self.bars is not None:
                style = STATUS_STYLE.get(status, "")
                self.bars.update(self.tasks[host.name], total=1, completed=1,
                                 description=f"[{style}]{status}[/]" + (f" (exit {exit_code})" if exit_code else ""))
            if self.output.json:
                self._json_line(document)
                return
            if host_output.stdout_text:
                sys.stdout.write(host_output.stdout_text)
                sys.stdout.flush()
            if host_output.stderr_text:  # errors carry no host name of their own
                sys.stderr.write(f"--- {host.name} ({host.target}) ---\n{host_output.stderr_text}")
                sys.stderr.flush()

    def json_line(self, document: dict[str, Any] | None) -> None:
        """One host's JSON document as one line on stdout (JSON Lines)."""
        with self._lock:
            self._json_line(document)

    @staticmethod
    def _json_line(document: dict[str, Any] | None) -> None:
        sys.stdout.write(json.dumps(to_jsonable(document)) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None


class HostOutput(Output):
    """One host's Output during a fleet run: results and errors into buffers, progress to its line."""

    def __init__(self, parent: Output, host: Host, board: FleetBoard):
        super().__init__(parent.mode, parent.verbosity)
        self.host, self.board = host, board
        self.document: Any = None
        self._stdout, self._stderr = io.StringIO(), io.StringIO()
        self._console = self._buffer_console(self._stdout, parent.console)
        self._err_console = self._buffer_console(self._stderr, parent.err)

    @staticmethod
    def _buffer_console(buffer: io.StringIO, like: Console) -> Console:
        from rich.console import Console

        return Console(file=buffer, highlight=False, width=like.width, force_terminal=like.is_terminal,
                       color_system=like.color_system)  # type: ignore[arg-type]

    @property
    def stdout_text(self) -> str:
        return self._stdout.getvalue()

    @property
    def stderr_text(self) -> str:
        return self._stderr.getvalue()

    @property
    def interactive(self) -> bool:
        return False  # the board draws this host's one line; no bars of its own

    def result(self, data: Any, render: Renderer | None = None) -> None:
        self.document = to_jsonable(data)
        if not self.json:
            super().result(data, render)

    def error(self, error: FlashheadError) -> None:
        if self.document is None:  # a verb that printed its result and then an error keeps its result
            self.document = {"ok": False, **to_jsonable(error.to_dict())}
        if not self.json:
            super().error(error)

    def progress(self, message: str) -> None:
        self.board.update(self.host, message)

    def progress_event(self, record: dict) -> None:
        if self.json:
            self.event(record)
        else:
            self.board.update(self.host, f"[dim]… {escape(str(record.get('message', '')))}[/]")

    def event(self, record: dict) -> None:
        if self.json:
            self.board.event({"host": self.host.name, **record})


def render_summary(console: Console, outcomes: list[HostOutcome], rows: dict[str, tuple[str, str]],
                   verb: str) -> None:
    """The table at the end of a fleet run: one row per host, then the counts."""
    from rich.table import Table

    table = Table(title=f"{verb}: {len(outcomes)} host(s)", title_justify="left")
    for column in ("host", "target", "status", "exit", "time", "detail"):
        table.add_column(column, justify="right" if column in ("exit", "time") else "left")
    counts: dict[str, int] = {}
    for outcome in outcomes:
        status, detail = rows[outcome.host.name]
        counts[status] = counts.get(status, 0) + 1
        table.add_row(escape(outcome.host.name), escape(outcome.host.target),
                      f"[{STATUS_STYLE.get(status, '')}]{status}[/]",
                      "" if outcome.exit_code is None else str(int(outcome.exit_code)),
                      "" if outcome.skipped else f"{outcome.seconds:.1f}s", escape(detail))
    console.print(table)
    console.print(", ".join(f"{count} {status}" for status, count in counts.items()))
