"""Preflight: stop before changing anything on a host that cannot run FlashHead; prepare model_root.

The check probes the host (the same probes as `flashhead facts`) and judges the result on the host
with ops/facts/requirements.py, carried in the script: the judgement doctor and facts make, in
`provision` and in the exported script alike. Blockers: no NVIDIA GPU, a driver older than
`min_driver`, a GPU below `min_compute_capability`, an OS or architecture outside `supported_os` /
`supported_arch`, less free disk than `disk_gib` still needs (what model_root holds counts as done).
The host needs a python3 for that (every supported release has one). The only change it makes is
creating model_root and its state dir, owned by the login user.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.facts.gather import probe_script
from ops.facts.requirements import Verdict
from ops.playbook.model import State
from ops.tasks.base import Task

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

# The modules the host runs (stdlib only): the fact parsers and the requirements.
EMBEDDED = ["ops", "ops.facts", "ops.facts.cuda", "ops.facts.disk", "ops.facts.gather", "ops.facts.gpu",
            "ops.facts.memory", "ops.facts.osinfo", "ops.facts.python", "ops.facts.requirements"]
LOADER = '''import importlib.abc, importlib.util, sys
class _Embedded(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in SOURCES:
            return importlib.util.spec_from_loader(name, self, is_package=SOURCES[name][0])
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        exec(compile(SOURCES[module.__name__][1], "<" + module.__name__ + ">", "exec"), module.__dict__)
sys.meta_path.insert(0, _Embedded())
from ops.facts.requirements import main
sys.exit(main())
'''
NO_PYTHON = Verdict("python", "python3", False, "not found", "no python3 on the host (preflight and the play need "
                    "one)", "install it: apt install python3")
UNJUDGED = Verdict("judge", "requirements", False, "the judgement failed", "preflight could not judge the host "
                   "(python3 failed; its output is above)", "check the host's python3 (python3 -c 'import json')")


def embedded_program() -> str:
    """A Python program that carries EMBEDDED and runs ops.facts.requirements.main."""
    sources = {}
    for name in EMBEDDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        sources[name] = (spec.submodule_search_locations is not None, Path(spec.origin).read_text())
    return f"SOURCES = {sources!r}\n{LOADER}"


def _verdict_line(verdict: Verdict) -> str:
    return "{ echo " + quote("@@verdict " + json.dumps(asdict(verdict))) + "; echo " + quote(
        f"@@blocker {verdict.problem}|{verdict.remedy}") + "; }"


class Preflight(Task):
    sudo_apply = True

    def check_script(self, ctx: Context) -> str:
        v = ctx.vars
        return (f"root={quote(v['model_root'])}; state_dir={quote(v['state_dir'])}\n"
                f"facts=$(\n{probe_script(v)}\n)\n"
                f"py=$(command -v python3) || {{ {_verdict_line(NO_PYTHON)}; exit 2; }}\n"
                f"FLASHHEAD_FACTS=\"$facts\" \"$py\" -I - {quote(json.dumps(v, default=str))} <<'FLASHHEAD_PY'\n"
                f"{embedded_program()}FLASHHEAD_PY\n"
                "rc=$?\n"
                f"[ \"$rc\" = 0 ] || {{ [ \"$rc\" = 2 ] || {_verdict_line(UNJUDGED)}; exit 2; }}\n"
                'echo "@@user $(id -un) $(id -gn)"\n'
                'if [ -d "$state_dir" ] && [ -w "$state_dir" ] && [ -w "$root" ]; then exit 0; fi\n'
                'echo "@@pending create $root and $state_dir owned by $(id -un)"; exit 1\n')

    def parse_check(self, ctx: Context, result: Result) -> State:
        verdicts = {v["key"]: v for v in parse_verdicts(result.stdout)}
        summary = "; ".join(verdicts[key]["detail"] for key in ("os", "gpu") if key in verdicts)
        if "disk" in verdicts and verdicts["disk"]["ok"] is not None:
            summary += "; " + verdicts["disk"]["detail"].split(" still needed")[0].rsplit(",", 1)[0]
        if result.exit_status == 0:
            return State(done=True, summary=summary)
        pending = [line[len("@@pending "):] for line in result.stdout.splitlines() if line.startswith("@@pending ")]
        return State(done=False, summary=summary, changes=pending)

    def blocked(self, ctx: Context, result: Result) -> tuple[str, str | None]:
        failed = [v for v in parse_verdicts(result.stdout) if v["blocks"] and v["ok"] is False]
        if not failed:
            return super().blocked(ctx, result)
        message = "preflight: this host cannot run FlashHead; nothing was changed: " + "; ".join(
            v["problem"] for v in failed)
        return message, "; ".join(v["remedy"] for v in failed)

    def apply_script(self, ctx: Context, state: State | None) -> str:
        owner = ctx.vars.get("owner") or ""
        who = quote(owner) if owner else '"${SUDO_USER:-$(id -un)}"'
        return (f"owner={who}\n"
                f"install -d -m 0755 -o \"$owner\" -g \"$(id -gn \"$owner\")\" "
                f"{quote(ctx.vars['model_root'])} {quote(ctx.vars['state_dir'])}\n")


def parse_verdicts(text: str) -> list[dict]:
    """The `@@verdict {json}` lines the check printed."""
    return [json.loads(line.split(" ", 1)[1]) for line in text.splitlines() if line.startswith("@@verdict ")]

