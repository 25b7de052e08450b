"""flash-attn 2.8.0.post2: the release wheel matching this torch, else a source build; then import it.

The choice runs on the host with the venv's torch (ops/tasks/flash_attn_wheel.py, the same code
in the exported script). A source build uses ninja with MAX_JOBS sized from RAM (~9 GB a job).
An `undefined symbol` on import (c10::Error…) is explained as the ABI mismatch it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import DONE, Task
from ops.tasks.pip import parse_versions, pip_install, pip_source, versions_check

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

HELPER = Path(__file__).with_name("flash_attn_wheel.py")


def helper_path(ctx: Context) -> str:
    return f"{ctx.vars['state_dir']}/bin/flash_attn_wheel.py"


def plan_config(ctx: Context) -> dict:
    return {"version": str(ctx.arg("flash_attn_version")), "base_url": ctx.arg("flash_attn_wheel_base_url"),
            "torch_versions": [str(v) for v in ctx.arg("flash_attn_wheel_torch")],
            "python_tags": [str(v) for v in ctx.arg("flash_attn_wheel_pythons")],
            "gib_per_job": ctx.arg("flash_attn_build_gib_per_job", 9),
            "source_build": bool(ctx.arg("flash_attn_source_build", False))}


class FlashAttn(Task):
    apply_timeout = 4 * 3600.0  # a source build on a small host takes hours
    def check_script(self, ctx: Context) -> str:
        wanted: dict[str, str | None] = {"flash-attn": str(ctx.arg("flash_attn_version")), "torch": None}
        return versions_check(f"{ctx.arg('venv')}/bin/python", wanted)

    def parse_check(self, ctx: Context, result: Result) -> State:
        versions = parse_versions(result.stdout)
        found, torch = versions.get("flash-attn"), versions.get("torch")
        version = ctx.arg("flash_attn_version")
        built_for = ctx.hoststate.step(ctx.step).get("torch") if ctx.hoststate else None
        if result.exit_status == DONE and (built_for is None or built_for == torch):
            return State(done=True, summary=f"flash-attn {found} (torch {torch})")
        why = (f"torch changed from {built_for} to {torch} since flash-attn was installed: its binary must match "
               "torch's ABI" if result.exit_status == DONE else f"flash-attn {found or 'not installed'}")
        return State(done=False, summary=why,
                     changes=[f"install flash-attn {version} (release wheel matching torch, else source build): {why}"])

    def after_apply(self, ctx: Context, state: State, result: Result) -> None:
        torch = next((line.split()[1] for line in result.stdout.splitlines() if line.startswith("@@torch ")), None)
        ctx.hoststate.record(ctx.step, {"torch": torch, "version": str(ctx.arg("flash_attn_version"))})

    def files(self, ctx: Context) -> dict[str, bytes]:
        return {helper_path(ctx): HELPER.read_bytes()}

    def apply_script(self, ctx: Context, state: State | None) -> str:
        return install_script(ctx)


def install_script(ctx: Context) -> str:
    """Plan on the host, install the wheel (or build), then import flash_attn (exit 3 explained)."""
    python = f"{ctx.arg('venv')}/bin/python"
    helper = helper_path(ctx)
    source = pip_source(ctx)
    version = str(ctx.arg("flash_attn_version"))
    wheel = pip_install(python, [], **source).rstrip() + ' "${choice#url }"'
    build_tools = pip_install(python, ["ninja", "packaging", "wheel", "setuptools", "psutil"], **source)
    # -v: the build's own output (ninja's [n/m]) streams to the operator as progress
    build = pip_install(python, [f"flash-attn=={version}"], options=["--no-build-isolation", "--no-cache-dir", "-v"],
                        **source)
    return (f"choice=$({quote(python)} {quote(helper)} plan {quote(json.dumps(plan_config(ctx)))})\n"
            f"case \"$choice\" in\n"
            f"  url\\ *) {wheel} ;;\n"
            f"  build\\ *)\n    {build_tools}\n"
            f"    export MAX_JOBS=\"${{choice#build }}\" FLASH_ATTENTION_FORCE_BUILD=TRUE "
            f"CUDA_HOME={quote(ctx.arg('cuda_home'))}\n"
            f"    export PATH=\"$CUDA_HOME/bin:$PATH\"\n    {build} ;;\n"
            f"  *) echo \"cannot choose a flash-attn build: $choice\" >&2; exit 2 ;;\nesac\n"
            f"{quote(python)} {quote(helper)} verify\n")
