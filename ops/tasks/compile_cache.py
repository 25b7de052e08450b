"""Build the server's compile cache on the host's GPU after `verify`, so no server start pays the compile.

The step runs `python -m inference.compile_cache` in the host venv with the deployment's FLASHHEAD_*
settings (backend flashhead, compile on, the play's model type, engine and max batch; every path
derived from model_root by the server's own config). Its check is `--check`: done when the cache's
stamp matches this host's torch, Triton, CUDA, GPU, FlashHead's code and those settings; the apply
builds it (a few minutes on a GPU: the same load and warm-up as a server start).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from inference.config import ServerConfig
from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import Task

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

MARK = "@@compile-cache "


def cache_settings(ctx: Context) -> dict[str, str]:
    """The FLASHHEAD_* settings the server will run with, as far as they shape the compiled graphs (a setting
    the play leaves out is the server's own default: inference.config owns those)."""
    server = ServerConfig()
    return {
        "FLASHHEAD_BACKEND": "flashhead", "FLASHHEAD_COMPILE": "1", "FLASHHEAD_DEVICE": "cuda",
        "FLASHHEAD_MODEL_ROOT": str(ctx.vars["model_root"]),
        "FLASHHEAD_REPO_DIR": str(ctx.arg("flashhead_dir")),
        "FLASHHEAD_CHECKPOINT_DIR": str(ctx.arg("models_dir")),
        "FLASHHEAD_MODEL_TYPE": str(ctx.arg("model_type", server.model_type)),
        "FLASHHEAD_ENGINE": str(ctx.arg("engine", server.engine)),
        "FLASHHEAD_MAX_BATCH": str(ctx.arg("max_batch", server.max_batch)),
        "FLASHHEAD_CUDA_GRAPHS": "1" if ctx.arg("cuda_graphs", server.cuda_graphs) else "0",
        "FLASHHEAD_COMPILE_SCOPE": str(ctx.arg("compile_scope", server.compile_scope)),
        "FLASHHEAD_DIT_DTYPE": str(ctx.arg("dit_dtype", server.dit_dtype)),
    }


def script(ctx: Context, check: bool) -> str:
    """Bash running the module in the venv with the settings exported (quoted), from model_root."""
    python = f"{ctx.arg('venv')}/bin/python"
    exports = "".join(f"export {name}={quote(value)}\n" for name, value in cache_settings(ctx).items())
    return (f"[ -x {quote(python)} ] || {{ echo '@@no-venv'; exit 1; }}\n"
            f"cd {quote(str(ctx.vars['model_root']))}\n{exports}"
            f"exec {quote(python)} -m inference.compile_cache{' --check' if check else ''}\n")


def parse_report(stdout: str) -> dict:
    """The JSON after the module's `@@compile-cache ` line ({} when it printed none)."""
    for line in stdout.splitlines():
        if line.startswith(MARK):
            report = json.loads(line[len(MARK):])
            return report if isinstance(report, dict) else {}
    return {}


class CompileCache(Task):
    apply_timeout = 3600.0  # a cold compile with a large max batch took 385 s on an H200

    def check_script(self, ctx: Context) -> str:
        return script(ctx, check=True)

    def parse_check(self, ctx: Context, result: Result) -> State:
        report = parse_report(result.stdout)
        status = report.get("status")
        if status == "up to date" and result.exit_status == 0:
            return State(done=True, summary=f"compile cache up to date in {report.get('cache_dir')}")
        if status in ("missing", "stale"):
            why = "no cache yet" if status == "missing" else f"built for other {', '.join(stale_keys(report))}"
            return State(done=False, summary=why, changes=[f"build the compile cache on this GPU ({why})"])
        if "@@no-venv" in result.stdout:
            return State(done=False, summary="the venv is missing", changes=["build the compile cache"])
        detail = report.get("message") or result.output[-400:]
        return State(done=False, summary=f"the cache check did not run: {detail}",
                     changes=["build the compile cache"])

    def apply_script(self, ctx: Context, state: State | None) -> str:
        return script(ctx, check=False)


def stale_keys(report: dict) -> list[str]:
    """Which parts of the stamp differ between the cache found and the one wanted."""
    found, wanted = report.get("found") or {}, report.get("wanted") or {}
    keys = [key for key in wanted if found.get(key) != wanted.get(key)]
    return keys or ["settings"]
