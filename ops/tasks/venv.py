"""The Python venv at `{venv}`: with uv when the host has it (`use_uv: auto`), else `python -m venv`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import DONE, Task

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context


class Venv(Task):
    def check_script(self, ctx: Context) -> str:
        python = quote(f"{ctx.arg('venv')}/bin/python")
        return (f"[ -x {python} ] || {{ echo '@@absent'; exit 1; }}\n"
                f"{python} -c 'import sys, pip; print(\"@@python\", sys.version.split()[0], \"pip\", pip.__version__)'"
                " || exit 1\n")

    def parse_check(self, ctx: Context, result: Result) -> State:
        venv = ctx.arg("venv")
        line = next((x for x in result.stdout.splitlines() if x.startswith("@@python")), "")
        if result.exit_status == DONE and line:
            return State(done=True, summary=f"{venv}: Python {line.split()[1]}")
        reason = "absent" if "@@absent" in result.stdout else "broken (python or pip does not run)"
        return State(done=False, summary=f"{venv} {reason}", changes=[f"create venv {venv} ({reason})"])

    def apply_script(self, ctx: Context, state: State | None) -> str:
        venv, python, use_uv = quote(ctx.arg("venv")), quote(str(ctx.arg("python"))), ctx.arg("use_uv", "auto")
        uv = f"uv venv --seed --allow-existing --python {python} {venv}\n"
        missing = (f"{ctx.arg('python')} not found: install it (apt install {ctx.arg('python')}-venv) or uv, "
                   "or pick another with --var python=...")
        plain = (f"command -v {python} >/dev/null || {{ echo {quote(missing)} >&2; exit 3; }}\n"
                 f"{python} -m venv --clear {venv}\n")
        if use_uv is True or use_uv == "always":
            return uv
        if use_uv is False or use_uv == "never":
            return plain
        return f"if command -v uv >/dev/null 2>&1; then\n  {uv}else\n  {plain}fi\n"
