"""Fixtures: the real inference server (uvicorn, reference backend) on a free loopback port."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import xmlschema

from ops.acceptance.localserver import LocalServer, start_local_server

SCHEMA_PATH = Path(__file__).with_name("junit-10.xsd")


@pytest.fixture(scope="session")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA_PATH))


@pytest.fixture(scope="session")
def server_token() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def reference_server(tmp_path_factory: pytest.TempPathFactory, server_token: str) -> Iterator[LocalServer]:
    """`python -m inference` with the reference backend and a bearer token."""
    server = start_local_server(tmp_path_factory.mktemp("server") / "server.log", token=server_token)
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """Start extra servers with FLASHHEAD_* settings for one test; all are stopped afterwards."""
    started: list[LocalServer] = []

    def start(**env: str) -> LocalServer:
        server = start_local_server(tmp_path / f"server-{len(started)}.log", env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
