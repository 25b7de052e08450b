"""Shared fixtures: a real sshd on loopback, the CLI runner, test stand-in executables; and the check,
before anything runs, that this machine has what the suite needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import system_needs
from tests.sshd import SSHServer, start_sshd

FIXTURES = Path(__file__).parent / "fixtures"
STANDIN_BIN = FIXTURES / "bin"  # test stand-ins for nvidia-smi / nvcc, never in the product
REPO = Path(__file__).resolve().parent.parent
def pytest_configure(config: pytest.Config) -> None:
    """Stop at the start, with one message, when the machine lacks what the suite needs."""
    missing = system_needs.missing()
    if missing:
        pytest.exit(f"the test suite needs {', '.join(missing)}. On Debian, as root: apt-get update && "
                    f"{system_needs.APT_LINE} "
                    "(the README's set-up block), then run the tests as root.", returncode=4)


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real OpenSSH server on a loopback port, with the GPU stand-ins on its PATH."""
    path = f"{STANDIN_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    server = start_sshd(tmp_path_factory.mktemp("sshd"), setenv={"PATH": path})
    yield server
    server.stop()


@pytest.fixture
def ssh_env(sshd_server: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SSHServer:
    """Point the client at a per-test copy of known_hosts and an empty ssh config; no agent."""
    known_hosts = tmp_path / "known_hosts"
    shutil.copy(sshd_server.known_hosts, known_hosts)
    monkeypatch.setenv("FLASHHEAD_KNOWN_HOSTS", str(known_hosts))
    monkeypatch.setenv("FLASHHEAD_SSH_CONFIG", str(sshd_server.ssh_config))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    server = SSHServer(**{**sshd_server.__dict__, "known_hosts": known_hosts})
    return server


@pytest.fixture(scope="session")
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that the unprivileged test login user can read (pytest's tmp is 0700)."""
    from tests.provision.stage import new_shared_dir

    path = new_shared_dir()
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="session")
def project_wheel(shared_dir: Path) -> Path:
    """This project's wheel, built once: the checkout changes under concurrent work, the wheel does not."""
    from ops.tasks.project_wheel import build_wheel

    return build_wheel(out=shared_dir / "built")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `flashhead` entry point in a subprocess (exit codes and streams as users see them)."""
    return subprocess.run([sys.executable, "-m", "ops.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or REPO, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
