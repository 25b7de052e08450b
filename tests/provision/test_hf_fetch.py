"""The host's fetch program with the newest huggingface_hub (this venv's 2.x; the play pins 0.36 on
hosts for transformers 4.57.3, exercised over SSH in test_play_ssh.py) against the loopback hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub

from tests.provision.conftest import TOKEN
from tests.provision.helpers import sha256

PROGRAM = "ops/tasks/remote/hf_fetch.py"
REPO = "Soul-AILab/SoulX-FlashHead-1_3B"


def run(mode: str, specs: list[dict], hub_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "HF_HOME": str(home)}
    return subprocess.run([sys.executable, PROGRAM, mode, json.dumps(specs)], capture_output=True, text=True, env=env)


def test_fetch_verify_and_check_with_huggingface_hub_2(hub, tmp_path):
    assert int(huggingface_hub.__version__.split(".")[0]) >= 1
    home = tmp_path / "hf-home"
    specs = [{"repo": REPO, "revision": hub.repos[REPO].commit, "dir": str(tmp_path / "m"),
              "patterns": ["VAE_Wan/*", "Model_Pro/*"]}]
    assert run("check", specs, hub.url, home).returncode == 1
    fetched = run("fetch", specs, hub.url, home)
    assert fetched.returncode == 0, fetched.stderr
    line = json.loads(fetched.stdout.split("@@fetched ", 1)[1])
    assert line["pinned"] is True and line["files"] == 3 and line["commit"] == hub.repos[REPO].commit
    path = tmp_path / "m" / "VAE_Wan" / "Wan2.1_VAE.pth"
    assert sha256(path) == hub.repos[REPO].files["VAE_Wan/Wan2.1_VAE.pth"].sha256
    assert not (tmp_path / "m" / "Model_Lite").exists()
    assert run("check", specs, hub.url, home).returncode == 0
    again = run("fetch", specs, hub.url, home)  # unchanged files are not hashed again
    assert json.loads(again.stdout.split("@@fetched ", 1)[1])["rehashed"] == 0
    path.write_bytes(path.read_bytes()[::-1])
    assert run("check", specs, hub.url, home).returncode == 1
