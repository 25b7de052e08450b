"""Helpers for the provisioning tests: read the host's files, sample `ps`, parse CLI JSON."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from pathlib import Path


class PsSampler:
    """Samples every process's argv (`ps -eo args`) while a run is in flight."""

    def __init__(self) -> None:
        self.samples: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            done = subprocess.run(["ps", "-eo", "user,args", "--no-headers", "-ww"], capture_output=True, text=True)
            self.samples.append(done.stdout)
            self._stop.wait(0.05)

    def __enter__(self) -> PsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def text(self) -> str:
        return "\n".join(self.samples)


def report(result: subprocess.CompletedProcess[str]) -> dict:
    """The JSON document `provision --output json` prints on stdout."""
    try:
        data: dict = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}") from exc
    return data


def statuses(data: dict) -> dict[str, str]:
    return {step["name"]: step["status"] for step in data["steps"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def events(model_root: Path) -> list[dict]:
    path = model_root / ".flashhead" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]
