"""The steps that need a GPU or NVIDIA's apt repo: checks run for real on the test host (with the
nvcc/nvidia-smi stand-ins), apply commands are pinned to their exact content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ops.playbook.context import Context
from ops.playbook.load import load_play
from ops.tasks import load_task
from tests.conftest import STANDIN_BIN
from tests.provision.helpers import report, statuses


def cuda_home(base: Path, release: str) -> Path:
    home = base / f"cuda-{release}"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    nvcc = home / "bin" / "nvcc"
    if not nvcc.exists():
        os.symlink(STANDIN_BIN / "nvcc-standin", nvcc)
    return home


def context(step: str, **overrides: object) -> Context:
    play = load_play(None, {"model_root": "/opt/models/flashhead", **overrides})
    spec = next(s for s in play.steps if s.name == step)
    return Context(conn=None, vars=play.vars, hoststate=None, args=spec.args, step=step)  # type: ignore[arg-type]


def test_cuda_toolkit_check_accepts_12_8_and_flags_another_release(fresh_host_factory, shared_dir):
    host = fresh_host_factory("cuda-check")
    good = host.provision("--check", "--step", "cuda_toolkit", "--output", "json",
                          "--var", f"cuda_home={cuda_home(shared_dir / 'cuda', '12.8')}")
    assert good.returncode == 0, good.stdout + good.stderr
    step = report(good)["steps"][0]
    assert step["status"] == "ok" and "nvcc 12.8.93" in step["summary"]
    old = host.provision("--check", "--step", "cuda_toolkit", "--output", "json",
                         "--var", f"cuda_home={cuda_home(shared_dir / 'cuda', '12.4')}")
    assert old.returncode == 4
    step = report(old)["steps"][0]
    assert step["status"] == "pending" and step["changes"] == [
        "install cuda-toolkit-12-8 from NVIDIA's apt repo (nvcc reports 12.4)"]


def test_torch_and_flash_attn_checks_read_the_venv(fresh_host_factory):
    host = fresh_host_factory("torch-check")
    result = host.provision("--check", "--step", "torch", "--step", "flash_attn", "--output", "json")
    assert result.returncode == 4
    data = report(result)
    assert statuses(data) == {"torch": "pending", "flash_attn": "pending"}
    torch = data["steps"][0]
    assert torch["changes"] == ["install torch==2.7.1+cu128 (found none)",
                                "install torchvision==0.22.1+cu128 (found none)"]


def test_cuda_toolkit_apply_installs_the_toolkit_package_only():
    script = load_task("cuda_toolkit").apply_script(context("cuda_toolkit"), None)
    assert script == (
        '. /etc/os-release\ndistro="${ID}${VERSION_ID//./}"\n'
        "export DEBIAN_FRONTEND=noninteractive\n"
        'tmp=$(mktemp -d); keyring="$tmp"/cuda-keyring_1.1-1_all.deb\n'
        'curl -fsSL --retry 3 -o "$keyring" '
        'https://developer.download.nvidia.com/compute/cuda/repos/"${distro}"/x86_64/cuda-keyring_1.1-1_all.deb\n'
        'dpkg -i "$keyring"\n'
        'rm -rf "$tmp"\n'
        "apt-get update -q\n"
        "apt-get install -y -q --no-install-recommends cuda-toolkit-12-8\n")
    assert "nvidia-driver" not in script and "cuda-drivers" not in script


def test_torch_apply_pins_both_packages_on_the_cu128_index():
    script = load_task("pip_packages").apply_script(context("torch"), None)
    assert script == ("/opt/models/flashhead/.venv/bin/python -m pip install --disable-pip-version-check "
                      "--no-input --index-url https://download.pytorch.org/whl/cu128 "
                      "torch==2.7.1 torchvision==0.22.1\n")
    offline = load_task("pip_packages").apply_script(
        context("torch", pip_no_index="true", pip_find_links="/srv/wheels"), None)
    assert "--no-index" in offline and "--find-links /srv/wheels" in offline


def test_flash_attn_apply_plans_on_the_host_then_installs_or_builds_then_imports():
    script = load_task("flash_attn").apply_script(context("flash_attn"), None)
    python = "/opt/models/flashhead/.venv/bin/python"
    helper = "/opt/models/flashhead/.flashhead/bin/flash_attn_wheel.py"
    lines = script.splitlines()
    assert lines[0].startswith(f"choice=$({python} {helper} plan '")
    assert '"version": "2.8.0.post2"' in lines[0] and '"torch_versions": ["2.4", "2.5", "2.6", "2.7"]' in lines[0]
    assert (f'  url\\ *) {python} -m pip install --disable-pip-version-check --no-input "${{choice#url }}" ;;'
            in lines)
    assert ('    export MAX_JOBS="${choice#build }" FLASH_ATTENTION_FORCE_BUILD=TRUE CUDA_HOME=/usr/local/cuda-12.8'
            in lines)
    assert (f"    {python} -m pip install --disable-pip-version-check --no-input --no-build-isolation "
            "--no-cache-dir -v flash-attn==2.8.0.post2 ;;") in lines
    assert lines[-1] == f"{python} {helper} verify"


def test_apt_and_venv_apply_commands():
    apt = load_task("apt").apply_script(context("system_packages"), None)
    assert apt == ("export DEBIAN_FRONTEND=noninteractive\napt-get update -q\n"
                   "apt-get install -y -q --no-install-recommends git ffmpeg build-essential ninja-build "
                   "python3-venv python3-dev curl ca-certificates libgl1 libglib2.0-0\n")
    mirrored = load_task("apt").apply_script(context("system_packages", apt_mirror="http://mirror.internal/debian"),
                                             None)
    assert ("printf 'deb %s %s %s\\n' http://mirror.internal/debian \"$VERSION_CODENAME\" main > "
            "/etc/apt/sources.list.d/flashhead-mirror.list") in mirrored
    venv = load_task("venv").apply_script(context("venv"), None)
    assert venv.startswith("if command -v uv >/dev/null 2>&1; then\n"
                           "  uv venv --seed --allow-existing --python python3.10 /opt/models/flashhead/.venv\n"
                           "else\n  command -v python3.10 >/dev/null || {")
    assert venv.endswith("python3.10 -m venv --clear /opt/models/flashhead/.venv\nfi\n")


@pytest.mark.parametrize("model_type, fetched", [("lite", ["Model_Lite/*", "VAE_LTX/*"]),
                                                 ("pro", ["Model_Pro/*", "VAE_Wan/*"])])
def test_checkpoint_patterns_follow_the_model_type(model_type, fetched):
    from ops.tasks.hf_snapshot import snapshot_specs

    specs = snapshot_specs(context("checkpoints", model_type=model_type))
    assert specs[0]["repo"] == "Soul-AILab/SoulX-FlashHead-1_3B" and specs[0]["patterns"] == fetched
    assert specs[1]["repo"] == "facebook/wav2vec2-base-960h"
    assert specs[0]["dir"] == "/opt/models/flashhead/models/SoulX-FlashHead-1_3B"
