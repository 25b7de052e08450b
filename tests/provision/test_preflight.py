"""Preflight stops a host that cannot run FlashHead before anything changes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ops.connectors.base import Result
from ops.errors import CheckFailed
from ops.playbook.context import Context
from ops.playbook.load import load_play
from ops.tasks.preflight import Preflight
from tests.conftest import STANDIN_BIN
from tests.provision.helpers import report


def run_check(model_root: Path, os_release: Path | None = None, **gpu_env: str) -> tuple[Context, Result]:
    """The real preflight check script, run here with the nvidia-smi stand-in and its env knobs;
    `os_release` is bind-mounted over /etc/os-release in a private mount namespace."""
    play = load_play(None, {"model_root": str(model_root), "disk_gib": {"venv": 0.01}})
    ctx = Context(conn=None, vars=play.vars, hoststate=None, step="preflight")  # type: ignore[arg-type]
    env = {**os.environ, "PATH": f"{STANDIN_BIN}:{os.environ['PATH']}", **gpu_env}
    script = Preflight().check_script(ctx)
    command = ["bash", "-c", script]
    if os_release is not None:
        command = ["unshare", "-m", "bash", "-c", 'mount --bind "$0" /etc/os-release && exec bash -c "$1"',
                   str(os_release), script]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    return ctx, Result("preflight", done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("env, message", [
    ({"FAKE_GPU_DRIVER": "550.54.15"}, "NVIDIA driver 550.54.15 is too old for CUDA 12.8 (needs >= 570.26)"),
    ({"FAKE_GPU_NAME": "Tesla V100-SXM2-16GB", "FAKE_GPU_CC": "7.0"}, "FlashAttention 2 needs >= 8.0"),
    ({"FAKE_GPU_FAIL": "1"}, "nvidia-smi failed: NVIDIA-SMI has failed"),
])
def test_gpu_blockers_stop_with_a_remedy(tmp_path, env, message):
    ctx, result = run_check(tmp_path / "flashhead", **env)
    assert result.exit_status == 2
    text, remedy = Preflight().blocked(ctx, result)
    assert message in text and "nothing was changed" in text and remedy


@pytest.mark.parametrize("release, supported", [
    ('ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.5 LTS"\n', True),
    ('ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n', True),
    ('ID=ubuntu\nVERSION_ID="20.04"\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\n', False),
    ('ID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40"\n', False),
])
def test_the_os_must_be_a_supported_release(tmp_path, release, supported):
    fake = tmp_path / "os-release"
    fake.write_text(release)
    ctx, result = run_check(tmp_path / "flashhead", os_release=fake)
    if supported:
        assert result.exit_status == 1, result.stdout  # only model_root to create
    else:
        assert result.exit_status == 2
        message, remedy = Preflight().blocked(ctx, result)
        assert "unsupported OS" in message and "ubuntu:22.04" in (remedy or "")


def test_a_good_host_is_pending_only_for_model_root(tmp_path):
    ctx, result = run_check(tmp_path / "flashhead")
    assert result.exit_status == 1, result.stdout
    state = Preflight().parse_check(ctx, result)
    assert "NVIDIA H100 80GB HBM3" in state.summary and state.changes[0].startswith("create ")


@pytest.fixture
def tiny_disk(shared_dir: Path, request: pytest.FixtureRequest):
    mount = shared_dir / f"tiny-{request.node.name[:40]}"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0777", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_host_with_too_little_disk_stops_at_preflight(fresh_host_factory, tiny_disk, hub):
    host = fresh_host_factory("tiny")
    root = tiny_disk / "flashhead"
    host.write_inventory(model_root=str(root), disk_gib={"venv": 12, "checkpoints_lite": 7, "wav2vec2": 0.5,
                                                         "caches": 2})
    requests = len(hub.log)
    result = host.provision("--output", "json")
    assert result.returncode == 1, result.stdout + result.stderr  # CheckFailed
    data = report(result)
    assert [s["name"] for s in data["steps"]] == ["preflight"] and data["steps"][0]["status"] == "failed"
    assert "not enough free disk" in data["error"]["message"] and "model_root" in data["error"]["remedy"]
    assert list(tiny_disk.iterdir()) == [] and len(hub.log) == requests


def test_a_blocked_host_in_check_mode_shows_the_blocker_and_every_other_step(fresh_host_factory, tiny_disk):
    from ops.playbook.load import load_play

    host = fresh_host_factory("tiny-check")
    host.write_inventory(model_root=str(tiny_disk / "flashhead"), disk_gib={"venv": 1})
    steps = [s.name for s in load_play(None).steps]
    data = report(host.provision("--check", "--output", "json"))
    assert [s["name"] for s in data["steps"]] == steps
    assert data["blocked"] == ["preflight"] and "not enough free disk" in data["steps"][0]["summary"]
    assert set(data["pending"]) >= {"venv", "checkpoints", "verify"} and data["error"]["exit_code"] == 1
    text = host.provision("--check", "--diff")
    assert text.returncode == int(CheckFailed.exit_code)
    assert "not enough free disk" in text.stderr and "model_root" in text.stderr
    assert "1 blocked (preflight)" in text.stdout and "pending" in text.stdout
    assert "@@" not in text.stdout + text.stderr + json.dumps(data)
    assert list(tiny_disk.iterdir()) == []
    # the exported script does the same in check-only mode, and stops at the blocker when applying
    from tests.provision.test_export_script import export, run_on_host

    script = export(host)
    checked = run_on_host(host, script, check_only=True)
    assert checked.returncode == 1 and "BLOCKED   preflight" in checked.stderr
    assert "not enough free disk" in checked.stderr and "-> free space on" in checked.stderr
    assert "pending   venv" in checked.stderr and "pending   verify" in checked.stderr
    assert "@@" not in checked.stderr
    applied = run_on_host(host, script, check_only=False)
    assert applied.returncode == 1 and "applying" not in applied.stderr and list(tiny_disk.iterdir()) == []
