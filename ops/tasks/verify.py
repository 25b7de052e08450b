"""Verify the host in its venv: torch sees the GPU, flash_attn and FlashHead import, checkpoints complete.

It changes nothing: its check is the verification, and a failure is reported with each failing
item. Which imports and whether a GPU is required come from vars (`verify_imports`, `verify_gpu`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.playbook.model import State, human_output
from ops.tasks.base import DONE, Task
from ops.tasks.flash_attn_wheel import explain_import_error

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

PROGRAM = r'''
import importlib, json, os, sys
cfg = json.loads(sys.argv[1]); results = []
def item(name, fn):
    try:
        results.append({"name": name, "ok": True, "detail": str(fn())})
    except BaseException as exc:
        results.append({"name": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"[:500]})
def gpu():
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError(f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
    x = torch.ones(256, 256, device="cuda"); (x @ x).sum().item()
    return f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}"
if cfg["gpu"]:
    item("torch sees the GPU", gpu)
sys.path.insert(0, cfg["repo_dir"])
for name in cfg["imports"]:
    item(f"import {name}", lambda name=name: getattr(importlib.import_module(name), "__file__", None) or name)
def snapshot(directory):
    with open(os.path.join(directory, ".flashhead-manifest.json")) as handle:
        manifest = json.load(handle)
    paths = {n: os.path.join(directory, n) for n in manifest["files"]}
    bad = [n for n, e in manifest["files"].items()
           if not os.path.isfile(paths[n]) or os.path.getsize(paths[n]) != e["size"]]
    if bad:
        raise RuntimeError("missing or truncated: " + ", ".join(bad))
    return f"{len(manifest['files'])} files at {manifest['commit'][:12]}"
for directory in cfg["checkpoints"]:
    item(f"checkpoints {os.path.basename(directory)}", lambda d=directory: snapshot(d))
for r in results:
    print("@@verify " + json.dumps(r))
sys.exit(0 if all(r["ok"] for r in results) else 1)
'''


class Verify(Task):
    def check_script(self, ctx: Context) -> str:
        python = f"{ctx.arg('venv')}/bin/python"
        config = {"gpu": bool(ctx.arg("verify_gpu", True)), "imports": list(ctx.arg("verify_imports", [])),
                  "repo_dir": str(ctx.arg("flashhead_dir")),
                  "checkpoints": [str(s["dir"]) for s in ctx.arg("snapshots", [])]}
        return (f"[ -x {quote(python)} ] || {{ echo '@@no-venv'; exit 1; }}\n"
                f"cd {quote(ctx.vars['model_root'])}\n"
                f"{quote(python)} - {quote(json.dumps(config))} <<'FLASHHEAD_PY'{PROGRAM}FLASHHEAD_PY\n")

    def parse_check(self, ctx: Context, result: Result) -> State:
        items = [json.loads(line.split(" ", 1)[1]) for line in result.stdout.splitlines()
                 if line.startswith("@@verify ")]
        if result.exit_status == DONE and items:
            return State(done=True, summary="; ".join(f"{i['name']}: {i['detail']}" for i in items))
        if not items:
            return State(done=False, summary="the venv is missing" if "@@no-venv" in result.stdout
                         else f"verification did not run: {human_output(result.output)[-300:]}", changes=["verify"])
        failed = [f"{i['name']}: {explain_import_error(i['detail']) or i['detail']}" for i in items if not i["ok"]]
        return State(done=False, summary="; ".join(failed), changes=[f"fails: {f}" for f in failed])

    def apply_script(self, ctx: Context, state: State | None) -> str:
        return "true\n"  # nothing to change: the re-check after it reports what still fails
