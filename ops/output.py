"""One place that renders results: rich text for humans, JSON for agents.

Actions return plain data (dicts, lists, dataclasses turned into dicts). A CLI verb hands that
data to `Output.result()` with a function that draws it for humans; in JSON mode the same data is
printed as one JSON document on stdout. Progress and diagnostics go to stderr in both modes, so
stdout stays machine-readable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from ops.errors import FlashheadError

Renderer = Callable[["Console", Any], None]


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, paths and other simple objects into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Output:
    """Renders results and errors in the chosen mode (`text` or `json`)."""

    def __init__(self, mode: str = "text", verbosity: int = 0):
        self.mode = mode
        self.verbosity = verbosity
        self._console: Console | None = None
        self._err_console: Console | None = None

    @property
    def json(self) -> bool:
        return self.mode == "json"

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False)
        return self._console

    @property
    def err(self) -> Console:
        if self._err_console is None:
            from rich.console import Console

            self._err_console = Console(stderr=True, highlight=False)
        return self._err_console

    @property
    def interactive(self) -> bool:
        return not self.json and sys.stderr.isatty()

    def result(self, data: Any, render: Renderer | None = None) -> None:
        """Print the result of a verb: JSON on stdout, or the human rendering."""
        if self.json:
            sys.stdout.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")
            sys.stdout.flush()
        elif render is not None:
            render(self.console, data)
        else:
            self.console.print(json.dumps(to_jsonable(data), indent=2))

    def progress(self, message: str) -> None:
        """A progress line for humans (stderr); silent in JSON mode unless -v."""
        if not self.json or self.verbosity > 0:
            self.err.print(message)

    def progress_event(self, record: dict) -> None:
        """What long work is doing or waiting for: a JSON line in JSON mode, a dim line for humans."""
        if self.json:
            self.event(record)
        else:
            seconds = f" ({record['seconds']:.0f} s)" if isinstance(record.get("seconds"), (int, float)) else ""
            style = "yellow" if record.get("kind") == "warning" else "dim"
            self.err.print(f"[{style}]… {escape(str(record.get('message', '')))}{seconds}[/]")

    def event(self, record: dict) -> None:
        """A streaming event: one JSON line on stderr in JSON mode, nothing in text mode."""
        if self.json:
            sys.stderr.write(json.dumps(to_jsonable(record)) + "\n")
            sys.stderr.flush()

    def error(self, error: FlashheadError) -> None:
        if self.json:
            sys.stdout.write(json.dumps({"ok": False, **to_jsonable(error.to_dict())}, indent=2) + "\n")
            sys.stdout.flush()
            return
        self.err.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
        for key, value in error.details.items():
            if key == "output_tail":
                if value:
                    self.err.print("[dim]last output lines:[/]")
                    self.err.print(escape(str(value)), style="dim")
            elif key not in ("hint",):
                self.err.print(f"  {key}: {escape(str(value))}", style="dim")
        if error.remedy:
            self.err.print(f"[bold]what to do:[/] {escape(error.remedy)}", soft_wrap=True)


def escape(text: str) -> str:
    """Escape rich markup in text that came from outside (hosts, files, errors)."""
    return text.replace("[", r"\[")


def check_line(ok: bool | None, name: str, detail: str = "", remedy: str | None = None) -> str:
    """One ✓/✗ line in rich markup, as doctor and provision print them."""
    mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[yellow]•[/]"}[ok]
    line = f"{mark} {escape(name)}"
    if detail:
        line += f"  [dim]{escape(detail)}[/]"
    if remedy and ok is False:
        line += f"\n    [bold]→[/] {escape(remedy)}"
    return line


_KINDS = {stat.S_IFDIR: "folder", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
          stat.S_IFIFO: "FIFO (named pipe)", stat.S_IFSOCK: "socket"}


def check_output_path(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output path that exists and is not a regular file: a device such as /dev/null, a
    FIFO, a folder, a symbolic link (followed, it would write elsewhere). Returns the path."""
    from ops.errors import OutputPathError

    target = Path(path).expanduser()
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputPathError(f"{option} {target}: {exc.strerror}", "give a path this user can write") from exc
    if stat.S_ISREG(info.st_mode):
        return target
    if stat.S_ISLNK(info.st_mode):
        kind = f"symbolic link to {os.readlink(target)}"
    else:
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "special file")
    raise OutputPathError(f"{option} {target} is a {kind}: refusing to write there",
                          "give the path of a regular file (a new one, or one to replace); an output option never "
                          "replaces, follows or changes the mode of anything else")


def write_output_file(path: str | Path, data: bytes | str, *, mode: int = 0o644, option: str = "--out") -> Path:
    """Write a file the user asked for and touch nothing else: refuse a path that is not a regular
    file (see check_output_path), write a temp file in the same folder, set its mode (less the
    umask), rename it over the target. Missing parent folders are created."""
    from ops.errors import OutputPathError

    target = check_output_path(path, option)
    content = data.encode() if isinstance(data, str) else data
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputPathError(f"{option} {target}: cannot write there: {exc.strerror}",
                              "give a path in a folder this user can write") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(handle.fileno(), mode & ~umask)
        check_output_path(target, option)  # it may have changed since; rename never follows a link anyway
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise OutputPathError(f"{option} {target}: cannot write there: {exc.strerror}",
                                  "give the path of a regular file in a folder this user can write") from exc
        raise
    return target
