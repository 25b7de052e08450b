"""Opening a session when sshd is at its MaxSessions limit: wait briefly and retry, never fail a check."""

from __future__ import annotations

import paramiko
import pytest

from ops.connectors.ssh import open_session


class Transport:
    """Refuses the first `refusals` channel opens with `code`, then hands out a channel."""

    def __init__(self, refusals: int, code: int = paramiko.common.OPEN_FAILED_CONNECT_FAILED):
        self.refusals, self.code, self.calls = refusals, code, 0

    def open_session(self) -> str:
        self.calls += 1
        if self.calls <= self.refusals:
            raise paramiko.ChannelException(self.code, "Connect failed")
        return "channel"


def test_a_refusal_for_the_session_limit_is_retried() -> None:
    transport = Transport(refusals=3)
    assert open_session(transport) == "channel" and transport.calls == 4  # type: ignore[arg-type]


def test_it_gives_up_after_its_attempts_with_sshds_answer() -> None:
    transport = Transport(refusals=10)
    with pytest.raises(paramiko.ChannelException, match="Connect failed"):
        open_session(transport, attempts=3)  # type: ignore[arg-type]
    assert transport.calls == 3


def test_other_refusals_are_not_retried() -> None:
    transport = Transport(refusals=1, code=paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED)
    with pytest.raises(paramiko.ChannelException):
        open_session(transport)  # type: ignore[arg-type]
    assert transport.calls == 1
