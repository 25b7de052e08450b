"""The built wheel, installed into a fresh venv outside the checkout, runs every verb as users run it.

The venv gets the wheel with `--no-deps`; its dependencies come from the test interpreter's
site-packages through a `.pth` line (the same packages a wheelhouse would hold, without a second
download). Every command runs from a folder outside the checkout, so nothing can fall back to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, STANDIN_BIN


@pytest.fixture(scope="module")
def installed(project_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed as `pip install` installs it (no editable finder, no checkout)."""
    venv = tmp_path_factory.mktemp("wheel-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "flashhead-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    "--disable-pip-version-check", str(project_wheel)], check=True, capture_output=True)
    return venv


def flashhead(venv: Path, cwd: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLASHHEAD_MANIFESTS")}
    return subprocess.run([str(venv / "bin" / "flashhead"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**clean, **(env or {})}, timeout=timeout)


def test_the_wheel_carries_the_manifests_and_the_playbook(project_wheel: Path) -> None:
    with zipfile.ZipFile(project_wheel) as wheel:
        names = set(wheel.namelist())
    assert "ops/_bundled/playbooks/flashhead.yaml" in names
    assert {"ops/_bundled/manifests/base/kustomization.yaml",
            "ops/_bundled/manifests/overlays/image/kustomization.yaml",
            "ops/_bundled/manifests/overlays/single-gpu-host/kustomization.yaml"} <= names


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(installed / "bin" / "python"), "-c", "import ops, inference; "
                           "print(ops.__file__); print(inference.__file__)"],
                          capture_output=True, text=True, cwd=tmp_path, check=True)
    for path in done.stdout.split():
        assert Path(path).is_relative_to(installed) and not Path(path).is_relative_to(REPO)


@pytest.mark.parametrize("args", [("--set", "node=gpu-1"),
                                  ("--overlay", "image", "--set", "image=r.example/fh:1@sha256:" + "0" * 64)])
def test_deploy_render_both_overlays(installed: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    done = flashhead(installed, tmp_path, "deploy", "render", *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    kinds = {obj["kind"] for obj in json.loads(done.stdout)["objects"]}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds


def test_provision_check_and_export_script(installed: Path, tmp_path: Path) -> None:
    env = {"PATH": f"{STANDIN_BIN}:{os.environ['PATH']}"}  # the stand-in nvidia-smi: a GPU host
    root = tmp_path / "models" / "flashhead"
    variables = ["--var", f"model_root={root}", "--var", 'disk_gib={"venv": 0.01}']
    check = flashhead(installed, tmp_path, "provision", "@local", "--check", *variables, "-o", "json", env=env)
    assert check.returncode == 4, check.stdout + check.stderr
    assert [s["name"] for s in json.loads(check.stdout)["steps"]][:2] == ["preflight", "system_packages"]
    script = tmp_path / "provision.sh"
    exported = flashhead(installed, tmp_path, "export-script", "@local", "--out", str(script), *variables)
    assert exported.returncode == 0, exported.stderr
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    checked = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                             env={**os.environ, **env, "FLASHHEAD_CHECK_ONLY": "1"}, timeout=300)
    assert checked.returncode == 4, checked.stderr
    assert "pending   inference_module" in checked.stderr and not root.exists()


def test_serve_check_and_demo(installed: Path, tmp_path: Path) -> None:
    check = flashhead(installed, tmp_path, "serve", "--check", "-o", "json")
    assert check.returncode == 0 and json.loads(check.stdout)["ok"] is True, check.stderr
    demo = flashhead(installed, tmp_path, "demo", "--out", "demo", timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert (tmp_path / "demo" / "demo.mp4").stat().st_size > 0
