"""The FlashHead repo at a pinned commit, and its requirements in the venv.

Clone (or fetch) from `flashhead_repo_url` (any git URL: a mirror, file://, git://) and check out
the pinned commit detached. Local modifications are reported and never overwritten: a dirty
checkout at another commit blocks the play unless `flashhead_repo_force: true`. A clone whose
first checkout never happened (it failed, or the run was cut) has no index and is simply checked
out. Requirements that disagree with the play's pins are reported; the play's pins win.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import DONE, Task
from ops.tasks.pip import pip_install, pip_options, pip_source
from ops.tasks.requirements import PROGRAM, RESOLVE

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context


def requirements_call(ctx: Context, mode: str) -> str:
    python, directory = f"{ctx.arg('venv')}/bin/python", ctx.arg("dir")
    pins, owned = ctx.arg("pins", {}), ctx.arg("owned", [])
    filtered = f"{ctx.vars['state_dir']}/requirements.filtered.txt"
    return (f"{quote(python)} - {mode} {quote(directory + '/' + ctx.arg('requirements', 'requirements.txt'))} "
            f"{quote(filtered)} {quote(json.dumps(pins))} {quote(json.dumps(owned))} <<'FLASHHEAD_PY'"
            f"{PROGRAM}FLASHHEAD_PY\n")


def resolve_call(ctx: Context) -> str:
    """The resolver run that drops requirement lines which would break the installed torch (requirements.py)."""
    python = f"{ctx.arg('venv')}/bin/python"
    filtered = f"{ctx.vars['state_dir']}/requirements.filtered.txt"
    options = pip_options(**pip_source(ctx))
    return (f"{quote(python)} - resolve {quote(filtered)} {quote(json.dumps(ctx.arg('owned', [])))} "
            f"{quote(json.dumps(options))} <<'FLASHHEAD_PY' || exit 3{RESOLVE}FLASHHEAD_PY\n")


class GitCheckout(Task):
    """Args: `url`, `commit` (40 hex), `dir`, `requirements` (path in the repo), `pins`, `owned`, `force`."""

    def check_script(self, ctx: Context) -> str:
        d, want = quote(ctx.arg("dir")), quote(str(ctx.arg("commit")))
        python = quote(f"{ctx.arg('venv')}/bin/python")
        return (f"d={d}; want={want}\n"
                "if [ -e \"$d\" ] && [ ! -d \"$d/.git\" ]; then echo \"@@not-a-checkout $d\"; exit 2; fi\n"
                "[ -d \"$d/.git\" ] || { echo '@@absent'; exit 1; }\n"
                "head=$(git -C \"$d\" rev-parse HEAD 2>/dev/null) || { echo '@@no-head'; exit 1; }\n"
                "echo \"@@head $head\"\n"
                # a clone whose first checkout never happened (failed, or cut) has no index and no files:
                # nothing of the user's to keep, the checkout is still to do
                "[ -f \"$d/.git/index\" ] || { echo '@@no-checkout'; exit 1; }\n"
                "dirty=$(git -C \"$d\" status --porcelain --untracked-files=no)\n"
                "[ -z \"$dirty\" ] || echo \"$dirty\" | sed 's/^/@@modified /'\n"
                "if [ \"$head\" != \"$want\" ]; then\n"
                f"  [ -z \"$dirty\" ] || [ {quote(str(bool(ctx.arg('force', False))).lower())} = true ] || exit 2\n"
                "  exit 1\nfi\n"
                f"[ -x {python} ] || {{ echo '@@no-venv'; exit 1; }}\n"
                + requirements_call(ctx, "check"))

    def parse_check(self, ctx: Context, result: Result) -> State:
        lines = result.stdout.splitlines()
        head = next((x.split()[1] for x in lines if x.startswith("@@head ")), None)
        modified = [x[len("@@modified "):] for x in lines if x.startswith("@@modified ")]
        report = _requirements(result.stdout)
        warnings = list(report.get("conflicts", []))
        if modified:
            warnings.append(f"local modifications in {ctx.arg('dir')} (left alone): " + ", ".join(modified))
        commit = str(ctx.arg("commit"))
        if result.exit_status == DONE:
            return State(done=True, summary=f"{ctx.arg('dir')} at {commit[:12]}, "
                         f"{len(report.get('install', []))} requirements installed", warnings=warnings)
        changes = []
        if "@@no-checkout" in result.stdout:
            changes.append(f"check out {commit[:12]} (cloned, never checked out)")
        elif head != commit:
            changes.append(f"{'clone' if head is None else 'fetch'} {ctx.arg('url')} and check out {commit[:12]}"
                           + (f" (now at {head[:12]})" if head else ""))
        changes += [f"pip install {m}" for m in report.get("missing", [])]
        if head == commit and not report:
            changes.append("install the requirements")
        return State(done=False, summary=f"{len(changes)} changes", changes=changes, warnings=warnings)

    def blocked(self, ctx: Context, result: Result) -> tuple[str, str | None]:
        d = ctx.arg("dir")
        if "@@not-a-checkout" in result.stdout:
            return (f"{d} exists but is not a git checkout", f"move it away (mv {d} {d}.old) and re-run")
        modified = [x[len("@@modified "):] for x in result.stdout.splitlines() if x.startswith("@@modified ")]
        return (f"{d} has local modifications and is not at the pinned commit: {', '.join(modified)}; "
                "refusing to overwrite them",
                f"keep them: git -C {d} stash (or commit them elsewhere), then re-run; "
                "or discard them: re-run with --var flashhead_repo_force=true")

    def apply_script(self, ctx: Context, state: State | None) -> str:
        directory, url = str(ctx.arg("dir")), quote(str(ctx.arg("url")))
        d, partial, git_dir = quote(directory), quote(directory + ".partial"), quote(directory + "/.git")
        want, want_commit = quote(str(ctx.arg("commit"))), quote(str(ctx.arg("commit")) + "^{commit}")
        python = f"{ctx.arg('venv')}/bin/python"
        filtered = f"{ctx.vars['state_dir']}/requirements.filtered.txt"
        force = f"git -C {d} reset --hard --quiet\n" if ctx.arg("force", False) else ""
        # literal values, not shell variables: a failure names the exact command
        return (f"if [ ! -d {git_dir} ]; then\n"
                f"  rm -rf {partial}\n"
                f"  git clone --quiet --no-checkout {url} {partial}\n"
                f"  mv -T {partial} {d}\nfi\n"
                f"git -C {d} remote set-url origin {url}\n"
                f"if ! git -C {d} cat-file -e {want_commit} 2>/dev/null; then\n"
                f"  git -C {d} fetch --quiet origin {want} 2>/dev/null || git -C {d} fetch --quiet --tags origin\n"
                "fi\n" + force
                + f"git -C {d} -c advice.detachedHead=false checkout --quiet --detach {want}\n"
                + requirements_call(ctx, "write").replace("<<'FLASHHEAD_PY'", "<<'FLASHHEAD_PY' || true", 1)
                + resolve_call(ctx)
                + pip_install(python, ["-r", filtered], **pip_source(ctx)) + "\n"
                + f"{quote(python)} -m pip check | sed 's/^/@@pip-check /' || true\n")

    def after_apply(self, ctx: Context, state: State, result: Result) -> None:
        report = _requirements(result.stdout)
        problems = [x[len("@@pip-check "):] for x in result.stdout.splitlines() if x.startswith("@@pip-check ")]
        resolved = _marked(result.stdout, "@@resolved ")
        state.warnings += (report.get("conflicts", []) + [f"skipped {x}" for x in resolved.get("skipped", [])]
                           + [p for p in problems if "No broken" not in p])
        ctx.hoststate.record(ctx.step, {"commit": ctx.arg("commit"), "installed": report.get("install", [])})


def _requirements(stdout: str) -> dict:
    return _marked(stdout, "@@requirements ")


def _marked(stdout: str, mark: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith(mark):
            found: dict = json.loads(line.split(" ", 1)[1])
            return found
    return {}
