"""`flashhead serve`: settings check (text and JSON, token redacted), errors as exit codes, a real run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import inference.server
from inference.config import ServerConfig
from inference.errors import BackendError
from tests.conftest import run_cli
from tests.inference.conftest import REPO, TOKEN, RunningServer, _wait, free_port


def test_check_prints_settings_without_the_token() -> None:
    result = run_cli("serve", "--check", "--max-streams", "5", "--idle-frames", "-o", "json",
                     env={"FLASHHEAD_API_TOKEN": TOKEN, "FLASHHEAD_HOST": "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["config"]["max_streams"] == 5 and data["config"]["idle_frames"] is True
    assert data["config"]["api_token"] == "***" and TOKEN not in result.stdout
    text = run_cli("serve", "--check")
    assert text.returncode == 0 and "FLASHHEAD_MAX_STREAMS" in text.stdout


def test_invalid_settings_exit_2_with_remedy() -> None:
    result = run_cli("serve", "--check", "--host", "0.0.0.0", "-o", "json")
    assert result.returncode == 2
    error = json.loads(result.stdout or result.stderr)
    assert "without an API token" in json.dumps(error)
    assert run_cli("serve", "--check", "--max-batch", "0").returncode == 2
    assert run_cli("serve", "--check", env={"FLASHHEAD_JPEG_QUALITY": "900"}).returncode == 2


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "ops.cli.main", "serve", "--port", str(port),
                                    "--max-streams", "2"], cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                                   env={**os.environ, "FLASHHEAD_GRACE_SECONDS": "0"})
    server = RunningServer(f"http://127.0.0.1:{port}", process, log)
    try:
        assert _wait(server), log.read_text()
        assert httpx.get(server.url + "/v1/info").json()["capacity"]["max_streams"] == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_the_server_keeps_transformers_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USE_TF", "unset below")  # recorded first, so the test's end removes what run() sets
    monkeypatch.delenv("USE_TF")
    monkeypatch.setenv("USE_FLAX", "1")  # an operator's own value

    def no_backend(config: ServerConfig) -> None:
        raise BackendError("stop here", None)

    monkeypatch.setattr(inference.server, "create_backend", no_backend)
    with pytest.raises(BackendError):
        inference.server.run(ServerConfig())
    assert os.environ["USE_TF"] == "0" and os.environ["USE_FLAX"] == "1"
