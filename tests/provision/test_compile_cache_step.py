"""The playbook's compile_cache step: its check runs `python -m inference.compile_cache --check` in the
host venv with the deployment's settings, quoted, and reads the module's report.

The check script runs here for real in bash (a venv whose python is this interpreter, FlashHead's
stand-in repository, a model_root with a space and a quote in its name). The apply builds on a GPU
(benchmarks/gpu_server.py --provision-cache runs it there); here its script is checked by content.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ops.playbook.context import Context
from ops.playbook.load import load_play
from ops.tasks import load_task
from ops.tasks.compile_cache import cache_settings, parse_report

pytest.importorskip("torch", reason="the check names the installed torch (CI installs the CPU build)")

FAKE_REPO = Path(__file__).resolve().parents[1] / "fixtures" / "fake_flashhead"


def context(root: Path, **overrides: object) -> Context:
    play = load_play(None, {"model_root": str(root), "venv": str(root / ".venv"),
                            "flashhead_dir": str(root / "SoulX-FlashHead"), **overrides})
    spec = next(s for s in play.steps if s.name == "compile_cache")
    return Context(conn=None, vars=play.vars, hoststate=None, args=spec.args, step="compile_cache")  # type: ignore[arg-type]


def host(tmp_path: Path) -> Path:
    root = tmp_path / "model root's"
    (root / ".venv" / "bin").mkdir(parents=True)
    python = root / ".venv" / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    shutil.copytree(FAKE_REPO, root / "SoulX-FlashHead")
    return root


def check(ctx: Context) -> SimpleNamespace:
    task = load_task("compile_cache")
    done = subprocess.run(["bash", "-c", task.check_script(ctx)], capture_output=True, text=True, timeout=120,
                          cwd="/", env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])})
    result = SimpleNamespace(exit_status=done.returncode, stdout=done.stdout, output=done.stdout + done.stderr)
    return SimpleNamespace(state=task.parse_check(ctx, result), report=parse_report(done.stdout), result=result)


def test_check_is_pending_until_the_stamp_matches_then_done(tmp_path: Path) -> None:
    from inference import compile_cache
    from inference.config import from_env

    root = host(tmp_path)
    ctx = context(root, model_type="pro", max_batch=4)
    first = check(ctx)
    assert first.result.exit_status == 1 and not first.state.done, first.result.output
    assert first.report["status"] == "missing" and "no cache yet" in first.state.summary
    assert first.report["cache_dir"] == str(root / ".cache" / "torch-compile")  # the server config's layout
    assert first.report["wanted"]["settings"] == {"model_type": "pro", "engine": "auto", "max_batch": 4,
                                                  "cuda_graphs": True, "compile_scope": "blocks",
                                                  "dit_dtype": "bf16", "device": "cuda"}
    config = from_env(cache_settings(ctx))
    compile_cache.write_stamp(config, first.report["wanted"])  # what the apply's build writes
    second = check(ctx)
    assert second.state.done and second.result.exit_status == 0, second.result.output
    stale = check(context(root, model_type="pro", max_batch=8))
    assert not stale.state.done and "built for other settings" in stale.state.summary


def test_apply_builds_with_the_same_settings(tmp_path: Path) -> None:
    ctx = context(tmp_path / "root")
    task = load_task("compile_cache")
    apply, check_script = task.apply_script(ctx, None), task.check_script(ctx)
    assert apply.replace("-m inference.compile_cache\n", "-m inference.compile_cache --check\n") == check_script
    for name, value in cache_settings(ctx).items():
        assert f"export {name}=" in apply and value
    assert json.dumps(cache_settings(ctx))  # plain strings only


def test_missing_venv_is_pending(tmp_path: Path) -> None:
    found = check(context(tmp_path / "nothing-here"))
    assert not found.state.done and "venv is missing" in found.state.summary
