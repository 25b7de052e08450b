"""Fixtures for the provisioning tests (session-scoped: staged once): see stage.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.provision.hf_server import HubServer, load_repos
from tests.provision.stage import (
    GPU_STEPS,
    TOKEN,
    GitSource,
    ProvisionHost,
    download_wheelhouse,
    make_host,
    serve_git,
    skip_args,
    ssh_connector,
)
from tests.sshd import SSHServer

__all__ = ["GPU_STEPS", "TOKEN", "ProvisionHost", "skip_args", "ssh_connector"]


@pytest.fixture(scope="session")
def wheelhouse(shared_dir: Path, project_wheel: Path) -> Path:
    return download_wheelhouse(shared_dir / "wheelhouse", project_wheel)


@pytest.fixture(scope="session")
def git_source(shared_dir: Path) -> Iterator[GitSource]:
    source = serve_git(shared_dir)
    yield source
    source.stop()


@pytest.fixture(scope="session")
def hub() -> Iterator[HubServer]:
    server = HubServer(load_repos(), require_token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fresh_host_factory(sshd_server: SSHServer, shared_dir: Path, wheelhouse: Path, git_source: GitSource,
                       hub: HubServer, project_wheel: Path):
    def factory(name: str) -> ProvisionHost:
        return make_host(sshd_server, shared_dir, name, wheelhouse, git_source, hub, project_wheel)
    return factory
