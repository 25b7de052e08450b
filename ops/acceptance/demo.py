"""`flashhead demo`: serve the reference backend on loopback, accept it, keep the clip and reports."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ops.acceptance.assets import FACE_PNG, SPEECH_WAV
from ops.acceptance.checks import AcceptanceReport
from ops.acceptance.fps import run_fps
from ops.acceptance.junit import write_junit
from ops.acceptance.localserver import start_local_server
from ops.acceptance.profiles import get_profile
from ops.acceptance.reports import write_json
from ops.acceptance.smoke import run_smoke
from ops.acceptance.target import Target
from ops.errors import UsageError

PROFILE = "reference-cpu"


@dataclass
class DemoResult:
    """The reports and where everything was written."""

    reports: list[AcceptanceReport]
    files: dict[str, str] = field(default_factory=dict)
    server_exit: int | None = None

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.reports)


OUTPUT_FILES = ("demo.mp4", "junit.xml", "smoke.json", "fps.json", "server.log")


def run_demo(out: Path, port: int = 0, profile: str = PROFILE,
             progress: Callable[[str], None] | None = None,
             keep_open: Callable[[str, str], None] | None = None) -> DemoResult:
    """Start the server (a fresh random token), run smoke + fps, stop it; write files under `out`.

    With `keep_open`, the server also serves the browser live view, and before it stops
    `keep_open(live_view_url, token)` runs (it returns when the person is done watching).
    """
    scenarios = list(get_profile(profile).scenarios)
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder", "pass a folder for the clip and the reports")
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    env = {"FLASHHEAD_LIVE_VIEW": "1"} if keep_open else None
    server = start_local_server(out / "server.log", port=port, token=token, env=env)
    try:
        target = Target(server.url, token=token)
        _say(progress, f"server ready at {server.url}; smoke test …")
        smoke = asyncio.run(run_smoke(target, FACE_PNG, SPEECH_WAV, clip_out=out / "demo.mp4"))
        fps = asyncio.run(run_fps(target, scenarios, FACE_PNG, SPEECH_WAV, profile=profile, progress=progress))
        if keep_open:
            keep_open(f"{server.url}/live", token)
    finally:
        server_exit = server.stop()
    files = {"clip": str(out / "demo.mp4"),
             "junit": str(write_junit([smoke, fps], out / "junit.xml")),
             "smoke report": str(write_json(smoke.to_dict(), out / "smoke.json")),
             "fps report": str(write_json(fps.to_dict(), out / "fps.json")),
             "server log": str(out / "server.log")}
    if not (out / "demo.mp4").is_file():
        files.pop("clip")
    return DemoResult([smoke, fps], files, server_exit)


def _say(progress: Callable[[str], None] | None, line: str) -> None:
    if progress:
        progress(line)
