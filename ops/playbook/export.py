"""Render a play as one self-contained bash script: the same checks, the same applies, no tool needed.

For hosts the tool cannot reach (SSH blocked): a human copies the script to the host and runs it.
Helper programs and the inference wheel are embedded; secrets are not (HF_TOKEN is read from the
environment of whoever runs the script). `FLASHHEAD_CHECK_ONLY=1` runs the checks only and exits
4 when changes are pending, like `flashhead provision --check`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.playbook.context import Context
from ops.playbook.expand import evaluate_when
from ops.playbook.load import select_steps
from ops.playbook.runner import APPLY_PREAMBLE
from ops.tasks import load_task
from ops.tasks.base import embed_file

if TYPE_CHECKING:
    from ops.playbook.model import Play

SECRET_ENV = {"HF_TOKEN"}
HEADER = """#!/usr/bin/env bash
# flashhead provisioning script for {host}, exported {date} from {playbook}.
# The same steps and checks as `flashhead provision`; each step is checked first and applied only
# when its check says so. Re-running it is safe.
#   bash {name}                         check, then apply what is pending
#   FLASHHEAD_CHECK_ONLY=1 bash {name}  checks only: every step is checked and listed; exit 4 when
#                                       changes are pending, 1 when the host cannot run FlashHead
#   HF_TOKEN=hf_... bash {name}         a token for the checkpoints (read from the environment only)
# Steps that install system packages use sudo. Exit codes: 0 done, 1 blocked or still pending after
# apply, 4 changes pending (check only), 5 a command failed.
set -uo pipefail
check_only=${{FLASHHEAD_CHECK_ONLY:-0}}
pending=0
blocked=0
as_root() {{ if [ "$(id -u)" = 0 ]; then bash -s; else sudo -H bash -s; fi; }}
say() {{ printf '%-9s %s\\n' "$1" "$2" >&2; }}
# a check's output for people: blockers as "problem / → remedy", the tool's @@ lines left out
show() {{ printf '%s\\n' "$1" | sed -e 's/^@@blocker \\([^|]*\\)|\\(.*\\)$/  \\1\\n    -> \\2/' -e '/^@@/d' >&2; }}
run_step() {{
  local name=$1 out rc
  out=$("step_${{name}}_check" 2>&1); rc=$?
  if [ "$rc" = 0 ]; then say ok "$name"; return 0; fi
  if [ "$rc" != 1 ]; then
    say BLOCKED "$name"; show "$out"
    if [ "$check_only" = 1 ]; then blocked=1; return 0; fi
    exit 1
  fi
  if [ "$check_only" = 1 ]; then say pending "$name"; pending=1; return 0; fi
  say applying "$name"
  "step_${{name}}_apply" || {{ say FAILED "$name"; exit 5; }}
  out=$("step_${{name}}_check" 2>&1) || {{
    say FAILED "$name: still pending after apply"; show "$out"; exit 1; }}
  say changed "$name"
}}
"""


def _comment(text: str) -> str:
    """Text for a `#` comment line: one line, control characters shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def render_script(play: Play, host_name: str, only: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                  source: str | None = None, name: str = "flashhead-provision.sh") -> str:
    """The play as bash: one check and one apply function per step, then the steps in order."""
    ctx = Context(conn=None, vars=play.vars, hoststate=None, source=source)  # type: ignore[arg-type]
    parts = [HEADER.format(host=_comment(host_name), playbook=_comment(play.path), name=_comment(name),
                           date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))]
    order = []
    for spec in select_steps(play, only, skip):
        if not evaluate_when(spec.when, play.vars):
            continue
        ctx.args, ctx.step = spec.args, spec.name
        task = load_task(spec.task)
        check = task.check_script(ctx)
        body = "".join(embed_file(path, content) for path, content in task.files(ctx).items())
        body += "".join(f"export {key}={quote(value)}\n" for key, value in task.apply_env(ctx).items()
                        if key not in SECRET_ENV)
        body += task.apply_script(ctx, None)
        runner = "as_root" if task.sudo_apply else "bash -s"
        parts.append(f"\n# --- {spec.name} ({spec.task}) ---\n"
                     f"step_{spec.name}_check() {{\n{check}\n}}\n"
                     f"step_{spec.name}_apply() {{\n{runner} <<'FLASHHEAD_STEP'\n{APPLY_PREAMBLE}{body}"
                     f"FLASHHEAD_STEP\n}}\n")
        order.append(spec.name)
    parts.append("\n" + "".join(f"run_step {name}\n" for name in order))
    parts.append('[ "$blocked" = 0 ] || exit 1\n[ "$pending" = 0 ] || exit 4\nsay done "all steps"\n')
    return "".join(parts)
