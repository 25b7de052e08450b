"""`flashhead demo` end to end: a real server comes and goes, the clip and reports are left behind."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import xmlschema

from ops.acceptance.media import Expected, check_mp4, media_duration, probe_mp4
from tests.conftest import run_cli


def test_demo_serves_accepts_and_leaves_a_clip_and_reports(tmp_path: Path,
                                                           junit_schema: xmlschema.XMLSchema) -> None:
    from ops.acceptance.assets import SPEECH_WAV

    out = tmp_path / "demo"
    # A clean machine may lack the ffmpeg programs: the demo then reads the clip with PyAV (the
    # server extra). `.ci/run` runs the same demo with ffmpeg installed.
    result = run_cli("demo", "--out", str(out), env={"PATH": str(tmp_path / "empty-bin")}, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "read with PyAV" in result.stdout
    text = " ".join(result.stdout.split())
    for name in ("demo.mp4", "junit.xml", "smoke.json", "fps.json", "server.log"):
        assert str(out / name) in text  # says where everything is
    assert "PASS 18/18" in text and "server: stopped (exit status 0)" in text
    checks = check_mp4(probe_mp4(out / "demo.mp4"), Expected(duration_s=media_duration(SPEECH_WAV)))
    assert all(check.ok for check in checks), [c for c in checks if not c.ok]
    junit_schema.validate(str(out / "junit.xml"))
    suites = junit_schema.to_dict(str(out / "junit.xml"))["testsuite"]
    assert [suite["@name"] for suite in suites] == ["flashhead.accept.smoke", "flashhead.accept.fps"]
    fps = json.loads((out / "fps.json").read_text())
    assert fps["ok"] is True and fps["profile"] == "reference-cpu"
    assert json.loads((out / "smoke.json").read_text())["ok"] is True


def test_demo_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    result = run_cli("demo", "--out", str(tmp_path / "taken"))
    assert result.returncode == 2
    assert "is a file, not a folder" in result.stderr


def test_demo_on_a_busy_port_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("demo", "--out", str(tmp_path / "demo"), "--port", str(port), "--output", "json")
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in json.loads(result.stdout)["message"]


def test_demo_open_serves_the_live_view_and_opens_it_without_the_token(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.conftest import REPO

    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"  # webbrowser.open runs $BROWSER with the URL
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser)}
    process = subprocess.Popen([sys.executable, "-m", "ops.cli.main", "demo", "--out", str(tmp_path / "demo"),
                                "--open"], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (opened.exists() and opened.read_text().strip()) and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.2)
        url = opened.read_text().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/live") and "token" not in url
        page = httpx.get(url)
        assert page.status_code == 200 and "FlashHead live view" in page.text
    finally:
        output, _ = process.communicate("", timeout=60)  # stdin closes: the demo stops the server
    assert process.returncode == 0, output
    import re

    text = " ".join(output.split())
    token = re.search(r"paste this API token into the page: (\S+)\)", text)
    assert token is not None and len(token.group(1)) >= 16 and token.group(1) not in url
    assert "server: stopped (exit status 0)" in text
