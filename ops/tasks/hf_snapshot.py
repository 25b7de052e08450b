"""Checkpoints from the Hugging Face Hub (or a mirror, or a pre-staged directory), pinned and verified.

Each snapshot is `{repo, revision, dir, patterns}`; `patterns` may be keyed by model_type so only
what the chosen model needs is fetched. The download runs on the host in the venv with
huggingface_hub (`snapshot_download`, resumable), HF_TOKEN passed by environment only. Every file
is verified afterwards (ops/tasks/remote/hf_fetch.py) and the resolved commit and hashes are
recorded in the model dir's manifest and the host state file. A revision that is not a commit
sha (e.g. `main`) is resolved at download time and reported as unpinned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import DONE, Task
from ops.tasks.pip import pip_install, pip_source, versions_check

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

PROGRAM = (Path(__file__).parent / "remote" / "hf_fetch.py").read_text()
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def snapshot_specs(ctx: Context) -> list[dict[str, Any]]:
    """The snapshots to fetch, with patterns chosen for the model type."""
    specs = []
    for item in ctx.arg("snapshots", []):
        patterns = item.get("patterns")
        if isinstance(patterns, dict):
            patterns = patterns.get(ctx.vars.get("model_type", "lite"))
        specs.append({"repo": str(item["repo"]), "revision": str(item["revision"]), "dir": str(item["dir"]),
                      "patterns": [str(p) for p in patterns] if patterns else None})
    return specs


def unpinned(specs: list[dict[str, Any]]) -> list[str]:
    return [f"{s['repo']} revision {s['revision']!r} is not a commit sha: it is resolved at download time and "
            "recorded; pin the sha for reproducible hosts" for s in specs if not COMMIT.match(s["revision"])]


def program_call(python: str, mode: str, specs: list[dict[str, Any]], source: str | None = None) -> str:
    extra = f" {quote(source)}" if source else ""
    return (f"{quote(python)} - {mode} {quote(json.dumps(specs))}{extra} <<'FLASHHEAD_PY'\n"
            f"{PROGRAM}FLASHHEAD_PY\n")


class HfSnapshots(Task):
    apply_timeout = 6 * 3600.0

    def check_script(self, ctx: Context) -> str:
        # any Python 3 reads manifests (stdlib only): the system's, else the venv's, else the play's
        venv_python = quote(f"{ctx.arg('venv')}/bin/python")
        finder = (f"py=$(command -v python3 || {{ [ -x {venv_python} ] && echo {venv_python}; }} || "
                  f"command -v {quote(str(ctx.arg('python')))}) || {{ echo '@@no-python'; exit 2; }}\n")
        return finder + program_call("$py", "check", snapshot_specs(ctx)).replace("'$py'", '"$py"', 1)

    def parse_check(self, ctx: Context, result: Result) -> State:
        statuses = [json.loads(line.split(" ", 1)[1]) for line in result.stdout.splitlines()
                    if line.startswith("@@snapshot ")]
        specs = snapshot_specs(ctx)
        if result.exit_status == DONE and statuses:
            summary = ", ".join(f"{s['repo']}@{(s.get('commit') or '?')[:12]} ({s.get('files')} files verified)"
                                for s in statuses)
            return State(done=True, summary=summary, warnings=unpinned(specs))
        changes = [f"{s['repo']}@{s['revision']} → {s['dir']}: {p}" for s in statuses for p in s["pending"]]
        source = f" from {ctx.source}" if ctx.source else f" from {ctx.arg('hf_endpoint')}"
        return State(done=False, summary=f"{len(changes)} to fetch/verify{source}", changes=changes,
                     warnings=unpinned(specs))

    def apply_env(self, ctx: Context) -> dict[str, str]:
        env = {"HF_ENDPOINT": str(ctx.arg("hf_endpoint")), "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        if ctx.arg("hf_hub_disable_xet", False):
            env["HF_HUB_DISABLE_XET"] = "1"  # plain HTTP downloads, for proxies that block the Xet CAS
        if ctx.secrets.get("HF_TOKEN"):
            env["HF_TOKEN"] = ctx.secrets["HF_TOKEN"]
        return env

    def apply_script(self, ctx: Context, state: State | None) -> str:
        python = f"{ctx.arg('venv')}/bin/python"
        hub: dict[str, str | None] = {"huggingface-hub": str(ctx.arg("huggingface_hub_version"))}
        ensure_hub = (f"if ! (\n{versions_check(python, hub)}) >/dev/null; then\n  "
                      + pip_install(python, [f"huggingface-hub=={hub['huggingface-hub']}"], **pip_source(ctx))
                      + "\nfi\n")
        return ensure_hub + program_call(python, "fetch", snapshot_specs(ctx), ctx.source)

    def after_apply(self, ctx: Context, state: State, result: Result) -> None:
        fetched = [json.loads(line.split(" ", 1)[1]) for line in result.stdout.splitlines()
                   if line.startswith("@@fetched ")]
        for item in fetched:
            if not item["pinned"]:
                state.warnings.append(f"{item['repo']}: unpinned revision {item['requested_revision']!r} "
                                      f"resolved to {item['commit']} (recorded)")
            if item["refetched"]:
                state.warnings.append(f"{item['repo']}: re-fetched after a failed verification: "
                                      + "; ".join(item["refetched"]))
        state.data["fetched"] = fetched
        ctx.hoststate.record(ctx.step, {"snapshots": fetched})
