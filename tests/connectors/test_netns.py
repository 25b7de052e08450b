"""A test host in its own network namespace (ip netns + veth): nothing assumes loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.connectors.ssh import SSHConnector
from ops.doctor import diagnose
from ops.inventory import Host
from tests.sshd import SSHServer, create_netns_host, delete_netns_host, start_sshd

NETNS = f"fh{os.getpid() % 100000}"
# 198.18.0.0/15 is reserved for network test benches (RFC 2544): a link that exists only between
# this machine and the namespace the test creates.
HOST_SIDE, NS_SIDE = "198.18.7.1", "198.18.7.2"


@pytest.fixture(scope="module")
def netns_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    create_netns_host(NETNS, HOST_SIDE, NS_SIDE)
    server = start_sshd(tmp_path_factory.mktemp("netns-sshd"), address=NS_SIDE, netns=NETNS,
                        setenv={"PATH": f"{Path(__file__).parent.parent / 'fixtures' / 'bin'}:/usr/bin:/bin:/usr/sbin"})
    yield server
    server.stop()
    delete_netns_host(NETNS)


def test_host_in_a_network_namespace(netns_sshd: SSHServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHHEAD_KNOWN_HOSTS", str(netns_sshd.known_hosts))
    monkeypatch.setenv("FLASHHEAD_SSH_CONFIG", str(netns_sshd.ssh_config))
    host = Host(name="ns-gpu", address=NS_SIDE, user=netns_sshd.user, identity_file=str(netns_sshd.client_key))
    with SSHConnector(host) as conn:
        # The peer sees us coming from the veth address, not from loopback.
        assert conn.run("echo $SSH_CLIENT").stdout.split()[0] == HOST_SIDE
        assert conn.run(["ip", "-o", "-4", "addr", "show"]).stdout.count(NS_SIDE) == 1
        report = diagnose(conn)
    checks = {check.name: check.ok for check in report.checks}
    assert checks["authenticate"] and checks["NVIDIA GPU"] and checks["sudo without prompt"]
