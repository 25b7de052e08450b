"""This project's `inference` package (+ its `[server]` extra) in the host venv, from a wheel built here.

The wheel is built locally (`pip wheel --no-deps`) and uploaded, so the host needs no access to
this source. Only the server extra's requirements are installed from the package source (index or
wheelhouse), not the operator's CLI dependencies, at the versions CI tested: the constraints file
(constraints/server.txt, which the wheel bundles like manifests/ and playbooks/) is uploaded
and passed to pip with `-c`, so a host never resolves an untested set. Done when the installed
distribution carries the fingerprint of the local sources and constraints (recorded in the host state).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from ops.bundled import bundled
from ops.connectors.base import quote
from ops.errors import ExitCode, FlashheadError
from ops.playbook.model import State
from ops.tasks.base import Task
from ops.tasks.own_wheel import DISTRIBUTION, installed_fingerprint, is_checkout, repack_installed
from ops.tasks.pip import pip_install, pip_source, versions_check

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

PROJECT = Path(__file__).resolve().parents[2]
_BUILDING = threading.Lock()  # the hosts of a fleet run share one build, never race in one folder


def server_constraints() -> Path:
    """The versions CI tested for the [server] extra (constraints/server.txt, in a checkout or the wheel)."""
    return bundled("constraints") / "server.txt"


class WheelBuildFailed(FlashheadError):
    """`pip wheel` of this project failed locally."""

    exit_code = ExitCode.USAGE


def source_fingerprint(root: Path = PROJECT) -> str:
    """sha256 over what the host uses: the `inference` package, pyproject.toml and the server constraints."""
    if not is_checkout(root):
        return installed_fingerprint()
    digest = hashlib.sha256()
    files = sorted([root / "pyproject.toml", root / "constraints" / "server.txt", *(root / "inference").rglob("*.py")])
    for path in files:
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_wheel(root: Path = PROJECT, out: Path | None = None) -> Path:
    """`pip wheel --no-deps` of this project into `out`; cached by source fingerprint by default."""
    with _BUILDING:
        return _build_wheel(root, out)


def _build_wheel(root: Path, out: Path | None) -> Path:
    if out is None:
        out = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "flashhead" / "wheels" / \
            source_fingerprint(root)[:16]
        cached = sorted(out.glob("*.whl"))
        if cached:
            return cached[0]
    if not is_checkout(root):
        return repack_installed(out)
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(root)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise WheelBuildFailed(f"building the {DISTRIBUTION} wheel failed: {done.stderr.strip()[-800:]}",
                               "pip needs its build backend (setuptools, from your index); see the error above")
    return next(out.glob("*.whl"))


def extra_requirements(wheel: Path, extra: str) -> list[str]:
    """The wheel's Requires-Dist lines for one extra (markers dropped)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    requirements = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and f'extra == "{extra}"' in line:
            requirements.append(line.split(":", 1)[1].split(";", 1)[0].strip())
    return requirements


class ProjectWheel(Task):
    def __init__(self) -> None:
        self.wheel: Path | None = None
        self._fingerprint: str | None = None

    def configure(self, ctx: Context) -> None:
        """`inference_wheel` (a wheel file here) is uploaded as is; else the wheel is built from this checkout."""
        given = ctx.arg("inference_wheel")
        if given and self.wheel is None:
            self.wheel = Path(str(given)).expanduser()
            if not self.wheel.is_file():
                raise FlashheadError(f"inference_wheel {self.wheel} does not exist", "pass the path of a built wheel")
            self._fingerprint = hashlib.sha256(self.wheel.read_bytes()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Taken once per run, so the check after apply compares against what was built."""
        if self._fingerprint is None:
            self._fingerprint = source_fingerprint()
        return self._fingerprint

    def marker(self, ctx: Context) -> str:
        return f"{ctx.vars['state_dir']}/inference-module.sha256"

    def check_script(self, ctx: Context) -> str:
        self.configure(ctx)
        python = f"{ctx.arg('venv')}/bin/python"
        return ("(\n" + versions_check(python, {DISTRIBUTION: None}) + ") || exit 1\n"
                f"[ \"$(cat {quote(self.marker(ctx))} 2>/dev/null)\" = {self.fingerprint} ] || "
                "{ echo '@@stale'; exit 1; }\n")

    def parse_check(self, ctx: Context, result: Result) -> State:
        if result.exit_status == 0:
            return State(done=True, summary=f"{DISTRIBUTION} installed (sources {self.fingerprint[:12]})")
        why = "sources changed since the last upload" if "@@stale" in result.stdout else "not installed"
        return State(done=False, summary=why,
                     changes=[f"build the {DISTRIBUTION} wheel here, upload it, install it with [server] ({why})"])

    def _wheel(self) -> Path:
        if self.wheel is None:
            self.wheel = build_wheel()
        return self.wheel

    def remote_wheel(self, ctx: Context) -> str:
        return f"{ctx.vars['state_dir']}/wheels/{self._wheel().name}"

    def remote_constraints(self, ctx: Context) -> str:
        return f"{ctx.vars['state_dir']}/server-constraints.txt"

    def files(self, ctx: Context) -> dict[str, bytes]:
        return {self.remote_wheel(ctx): self._wheel().read_bytes(),
                self.remote_constraints(ctx): server_constraints().read_bytes()}

    def apply_script(self, ctx: Context, state: State | None) -> str:
        python = f"{ctx.arg('venv')}/bin/python"
        wheel = self.remote_wheel(ctx)
        extras = extra_requirements(self._wheel(), str(ctx.arg("extra", "server")))
        constraints = ["-c", self.remote_constraints(ctx)]
        return (pip_install(python, extras, **pip_source(ctx), options=constraints) + "\n"
                + pip_install(python, [wheel], options=["--no-deps", "--force-reinstall"]) + "\n"
                + f"echo {self.fingerprint} > {quote(self.marker(ctx))}\n")
