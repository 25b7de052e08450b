"""One connection, many sessions, against a real sshd: a command that ends at once, or ends without
reading its stdin, never costs the connection, and threads that find it lost reconnect it once.

sshd drops the whole connection when an EOF arrives for a channel it has already closed. paramiko's
`shutdown_write` marks the EOF sent under the channel's lock but sends it after releasing the lock, so
on a loaded machine its own thread's answer to sshd's CLOSE can go out first (paramiko#1705). The tests
hold back every EOF the caller's thread sends, which makes that order happen every time.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import paramiko
import pytest

from ops.connectors.ssh import SSHConnector
from tests.connectors.test_ssh import make_host
from tests.sshd import SSHServer

LATE = 0.3  # long after a command like `true` has ended and sshd's CLOSE has been answered


@pytest.fixture
def late_eofs(monkeypatch: pytest.MonkeyPatch) -> None:
    send = paramiko.Transport._send_user_message

    def late(transport: paramiko.Transport, message: paramiko.Message) -> None:
        if message.asbytes()[:1] == paramiko.common.cMSG_CHANNEL_EOF and threading.current_thread() is not transport:
            time.sleep(LATE)
        send(transport, message)

    monkeypatch.setattr(paramiko.Transport, "_send_user_message", late)


def logins(server: SSHServer, since: int) -> int:
    return server.log()[since:].count("Accepted publickey")


@pytest.mark.parametrize("command, stdin", [
    ("true", None),  # ends at once
    ("exit 4", None),  # ends at once, with a status
    ("true", "a lock holder nobody reads\n"),  # ends without reading its stdin
    ("set -C; : > /dev/null/x 2>/dev/null; exit 1", b"\x00" * 70_000),  # refuses before reading, more than a window
    ("cat", "read to the end\n"),  # reads it all
])
def test_a_session_that_ends_first_never_costs_the_connection(ssh_env: SSHServer, late_eofs: None,
                                                               command: str, stdin: str | bytes | None) -> None:
    since = len(ssh_env.log())
    conn = SSHConnector(make_host(ssh_env))
    with conn:
        conn.open()
        transport = conn.connection.client.get_transport()
        for _ in range(3):
            result = conn.run(command, stdin=stdin, check=False)
            assert not result.lost
        assert result.exit_status == int(command.split()[-1]) if "exit" in command else result.ok
        if command == "cat":
            assert result.stdout == stdin
        assert conn.connection.client.get_transport() is transport and transport.is_active()
    assert "nonexistent channel" not in ssh_env.log()[since:]
    assert logins(ssh_env, since) == 1


def test_concurrent_sessions_share_one_connection_and_reconnect_it_once(ssh_env: SSHServer) -> None:
    since = len(ssh_env.log())
    conn = SSHConnector(make_host(ssh_env))
    with conn, ThreadPoolExecutor(8) as pool:
        first = list(pool.map(lambda n: conn.run(["echo", str(n)]).stdout, range(8)))
        assert first == [f"{n}\n" for n in range(8)]
        assert logins(ssh_env, since) == 1
        conn.connection.client.get_transport().close()  # the connection is lost between two checks
        again = list(pool.map(lambda n: conn.run(["echo", str(n)]).stdout, range(8)))
        assert again == first
        assert logins(ssh_env, since) == 2
        conn.run(["true"], env={"TOKEN": "x"})  # env travels over SFTP: its session is opened afresh
        conn.connection.client.get_transport().close()
        conn.run(["true"], env={"TOKEN": "x"})
        assert logins(ssh_env, since) == 3
