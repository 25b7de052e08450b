"""What a step is doing while it applies: the host's output, turned into progress events as it arrives.

The runner hands every piece of an apply's output to a StepProgress, which reads:
  `@@progress {json}`  the checkpoint download (ops/tasks/remote/hf_fetch.py): the file, its bytes
                       done and total, all bytes done and total, the rate
  `@@cmd <command>`    the command the step's script runs now (a bash DEBUG trap, TRACE_PREAMBLE)
  pip's and apt's own lines (Collecting, Downloading, Installing, Building wheel; Get:, Unpacking,
  Setting up) and a build's `[n/m]` (ninja)
and emits {"event": "progress", "step", "kind", "message", "elapsed", ...}: kind `download` (bytes),
`build` (steps), `phase` (what it does now), `waiting` (after `silence_s` seconds without output:
what the step is still waiting on, repeated every `silence_s`). Downloads and builds go out at most
once a second; a new phase at once.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

# Announces each command of an apply script on stderr before it runs (runner only, not export).
TRACE_PREAMBLE = "trap 'printf \"@@cmd %s\\n\" \"${BASH_COMMAND%%\"$nl\"*}\" >&2' DEBUG\n"
MIB = 2**20
_PHASES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^Collecting (\S+)"), lambda m: f"pip: collecting {m[1]}"),
    (re.compile(r"^\s*Downloading (\S+)(?: \(([^)]+)\))?"),
     lambda m: f"pip: downloading {m[1].rsplit('/', 1)[-1]}" + (f" ({m[2]})" if m[2] else "")),
    (re.compile(r"^\s*Building wheel for (\S+)"), lambda m: f"pip: building a wheel for {m[1]}"),
    (re.compile(r"^Installing collected packages: (.*)"),
     lambda m: f"pip: installing {len(m[1].split(','))} package(s)"),
    (re.compile(r"^Successfully installed (.*)"), lambda m: f"pip: installed {len(m[1].split())} package(s)"),
    (re.compile(r"^Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+(?: \[([^\]]+)\])?"),
     lambda m: f"apt: downloading {m[1]}" + (f" ({m[2]})" if m[2] else "")),
    (re.compile(r"^Fetched (.*)"), lambda m: f"apt: fetched {m[1]}"),
    (re.compile(r"^Unpacking (\S+)"), lambda m: f"apt: unpacking {m[1]}"),
    (re.compile(r"^Setting up (\S+)"), lambda m: f"apt: setting up {m[1]}"),
]
_BUILD = re.compile(r"^\[(\d+)/(\d+)\] ")


def size(count: float) -> str:
    return f"{count / MIB:.1f} MiB" if count < 2**30 else f"{count / 2**30:.2f} GiB"


class StepProgress:
    """Turns one step's apply output into progress events; `with` runs its silence watchdog."""

    def __init__(self, step: str, emit: Callable[[dict[str, Any]], None], *, silence_s: float = 60.0,
                 redact: Callable[[str], str] = lambda text: text):
        self.step, self.emit, self.silence_s, self.redact = step, emit, silence_s, redact
        self.started = self.last_output = time.monotonic()
        self.command = ""  # the script's current command (@@cmd)
        self.phase = ""  # the last phase seen in the tools' own output
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")}
        self._partial = {"stdout": "", "stderr": ""}
        self._sent: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StepProgress:
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watchdog.join(5)

    def feed(self, stream: str, data: bytes) -> None:
        """A piece of the apply's stdout or stderr, as it arrived."""
        with self._lock:
            self.last_output = time.monotonic()
            text = self._partial[stream] + self._decoders[stream].decode(data)
            *lines, self._partial[stream] = re.split(r"\r\n|\r|\n", text)
            for line in lines:
                self._line(self.redact(line))

    def _line(self, line: str) -> None:
        if line.startswith("@@cmd "):
            self.command = line[6:].strip()
            return
        if line.startswith("@@progress "):
            with contextlib.suppress(ValueError, KeyError, TypeError):  # a torn line: progress only informs
                self._download(json.loads(line[11:]))
            return
        if line.startswith("@@"):
            return
        built = _BUILD.match(line)
        if built:
            done, total = int(built[1]), int(built[2])
            self._send("build", f"building: step {done} of {total}", throttle=True, done=done, total=total)
            return
        for pattern, describe in _PHASES:
            found = pattern.match(line)
            if found:
                self.phase = describe(found)
                self._send("phase", self.phase)
                return

    def _download(self, report: dict[str, Any]) -> None:
        done, total, rate = int(report["done"]), int(report["total"]), float(report.get("rate") or 0)
        eta = f", {max(total - done, 0) / rate:.0f} s left" if rate > 0 else ""
        current = report.get("file") or ""
        self.phase = f"downloading {current}" if current else "downloading"
        message = (f"{current} {size(report.get('file_done', 0))} of {size(report.get('file_total', 0))}; "
                   f"{size(done)} of {size(total)} in all at {size(rate)}/s{eta}")
        self._send("download", message, throttle=True, done=done, total=total, rate=rate, file=current,
                   file_done=report.get("file_done"), file_total=report.get("file_total"),
                   files_done=report.get("files_done"), files_total=report.get("files_total"))

    def _send(self, kind: str, message: str, *, throttle: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if throttle and now - self._sent.get(kind, 0.0) < 1.0:
            return
        self._sent[kind] = now
        self.emit({"event": "progress", "step": self.step, "kind": kind, "message": message,
                   "elapsed": round(now - self.started, 1), **fields})

    def _watch(self) -> None:
        said_at = 0.0
        while not self._stop.wait(0.25):
            with self._lock:
                silent = time.monotonic() - self.last_output
                if silent < self.silence_s or silent - said_at < self.silence_s:
                    if silent < self.silence_s:
                        said_at = 0.0
                    continue
                said_at = silent
                on = self.phase or (f"`{self.command}`" if self.command else "the step's first command")
                if self.command and self.phase and not self.phase.startswith("downloading"):
                    on = f"{self.phase} (running `{self.command}`)"
                self._send("waiting", f"still waiting on {on}: no output for {silent:.0f} s",
                           silent=round(silent, 1), command=self.command)
