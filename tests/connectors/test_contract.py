"""What every connector promises (ops/connectors/base.py), checked on each: output streams while the
command runs, and a command that ends without a status is the same SessionLost everywhere."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ops.connectors.base import Connector
from ops.connectors.local import LocalConnector
from ops.connectors.ssh import SSHConnector
from ops.errors import SessionLost
from ops.inventory import Host
from tests.sshd import SSHServer


@pytest.fixture(params=["local", "ssh"])
def conn(request: pytest.FixtureRequest) -> Iterator[Connector]:
    if request.param == "local":
        yield LocalConnector(Host(name="@local", connector="local"))
        return
    server: SSHServer = request.getfixturevalue("ssh_env")
    with SSHConnector(Host(name="t", address=server.address, port=server.port, user=server.user,
                           identity_file=str(server.client_key))) as ssh:
        yield ssh


def streamed(conn: Connector, script: str) -> tuple[list[tuple[float, str, bytes]], float, float]:
    pieces: list[tuple[float, str, bytes]] = []
    started = time.monotonic()
    conn.run(script, on_output=lambda stream, data: pieces.append((time.monotonic(), stream, data)))
    return pieces, started, time.monotonic()


def test_output_arrives_while_the_command_runs(conn: Connector) -> None:
    conn.run("true")  # connected
    pieces, started, ended = streamed(conn, "echo first; echo err >&2; sleep 1.5; echo second")
    first = next(at for at, stream, data in pieces if b"first" in data)
    assert first - started < 1.0 and ended - first > 1.0  # seen well before the command ended
    assert {stream for _, stream, _ in pieces} == {"stdout", "stderr"}
    assert b"".join(d for _, s, d in pieces if s == "stdout") == b"first\nsecond\n"


def test_a_command_killed_by_a_signal_is_session_lost(conn: Connector) -> None:
    with pytest.raises(SessionLost) as lost:
        conn.run("echo before; kill -KILL $$", check=False)
    assert "without an exit status" in lost.value.message and "before" in lost.value.output
