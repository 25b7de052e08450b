"""Pinned packages in the venv (torch + torchvision from the cu128 index, huggingface_hub…).

Done when every package is installed at its pinned version (read from the venv's package
metadata, without importing anything heavy). `index_url` / `find_links` / `no_index` make the
source configurable (a mirror or an offline wheelhouse).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import DONE, Task, words

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

# Prints {"name": "version" or null} for the names given as JSON in argv[1]; exits 1 when any differs.
VERSIONS_PY = """import json, sys
from importlib import metadata
wanted = json.loads(sys.argv[1]); found = {}
for name in wanted:
    try: found[name] = metadata.version(name)
    except metadata.PackageNotFoundError: found[name] = None
print("@@versions " + json.dumps(found))
sys.exit(0 if all(found[n] == v or (v is None and found[n]) for n, v in wanted.items()) else 1)
"""


def versions_check(python: str, wanted: dict[str, str | None]) -> str:
    """A check that the venv has these distributions at these versions (None: any version)."""
    return (f"[ -x {quote(python)} ] || {{ echo '@@absent'; exit 1; }}\n"
            f"{quote(python)} -c {quote(VERSIONS_PY)} {quote(json.dumps(wanted))}\n")


def parse_versions(stdout: str) -> dict[str, str | None]:
    for line in stdout.splitlines():
        if line.startswith("@@versions "):
            found: dict[str, str | None] = json.loads(line.split(" ", 1)[1])
            return found
    return {}


def pip_install(python: str, requirements: list[str], *, index_url: str | None = None,
                extra_index_url: str | None = None, find_links: str | None = None, no_index: bool = False,
                options: list[str] | None = None) -> str:
    """The `pip install` command line for these requirements and this package source."""
    source = pip_options(index_url, extra_index_url, find_links, no_index)
    return (f"{quote(python)} -m pip install --disable-pip-version-check --no-input "
            f"{words([*source, *(options or []), *requirements])}")


def pip_options(index_url: str | None = None, extra_index_url: str | None = None, find_links: str | None = None,
                no_index: bool = False) -> list[str]:
    """pip's options for this package source."""
    source: list[str] = []
    if no_index:
        source.append("--no-index")
    if index_url:
        source += ["--index-url", index_url]
    if extra_index_url:
        source += ["--extra-index-url", extra_index_url]
    if find_links:
        source += ["--find-links", find_links]
    return source


def pip_source(ctx: Context, prefix: str = "pip") -> dict[str, Any]:
    """The package source from vars `pip_index_url`, `pip_find_links`, `pip_no_index` (or a prefix)."""
    return {"index_url": ctx.arg(f"{prefix}_index_url") or None,
            "extra_index_url": ctx.arg(f"{prefix}_extra_index_url") or None,
            "find_links": ctx.arg(f"{prefix}_find_links") or None,
            "no_index": bool(ctx.arg(f"{prefix}_no_index", False))}


class PipPackages(Task):
    """Args: `packages` ({name: version}), optional `local_version` ({name: "+cu128"}), `source` prefix."""

    def wanted(self, ctx: Context) -> dict[str, str | None]:
        suffixes = ctx.args.get("local_version") or {}
        return {name: (f"{version}{suffixes.get(name, '')}" if version else None)
                for name, version in (ctx.args.get("packages") or {}).items()}

    def check_script(self, ctx: Context) -> str:
        return versions_check(f"{ctx.arg('venv')}/bin/python", self.wanted(ctx))

    def parse_check(self, ctx: Context, result: Result) -> State:
        wanted, found = self.wanted(ctx), parse_versions(result.stdout)
        if result.exit_status == DONE and found:
            return State(done=True, summary=", ".join(f"{n} {v}" for n, v in found.items()))
        changes = [f"install {name}=={version or '*'} (found {found.get(name) or 'none'})"
                   for name, version in wanted.items() if found.get(name) != version or not found]
        return State(done=False, summary=f"{len(changes)} to install", changes=changes)

    def apply_script(self, ctx: Context, state: State | None) -> str:
        packages = ctx.args.get("packages") or {}
        requirements = [f"{name}=={version}" if version else name for name, version in packages.items()]
        source = pip_source(ctx, ctx.args.get("source", "pip"))
        return pip_install(f"{ctx.arg('venv')}/bin/python", requirements, **source) + "\n"
