"""Four (or N) test hosts for fleet runs: each a real sshd in its own network namespace, joined to
this machine by a bridge, with the local sources (git daemon, HF hub) on this machine's bridge address.

The hosts share this machine's file system (a namespace isolates the network only), so each gets its
own model_root through its host vars; the sources are group vars. Plain functions, so benchmarks/
can stage the same fleet without pytest.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.conftest import STANDIN_BIN, run_cli
from tests.provision.hf_server import HubServer, load_repos
from tests.provision.stage import TOKEN, GitSource, new_model_root, serve_git, source_vars
from tests.sshd import SSHServer, start_sshd

# 198.18.0.0/15 is reserved for network test benches (RFC 2544); tests/connectors/test_netns.py uses 198.18.7.0.
SUBNET = "198.18.20"
BRIDGE_ADDRESS = f"{SUBNET}.1"
STANDIN_PATH = f"{STANDIN_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Fleet:
    """N sshd hosts in network namespaces, the sources they provision from, and their inventory."""

    shared_dir: Path
    prefix: str
    servers: list[SSHServer] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    roots: dict[str, Path] = field(default_factory=dict)
    host_vars: dict[str, dict] = field(default_factory=dict)
    group_vars: dict = field(default_factory=dict)
    git: GitSource | None = None
    hub: HubServer | None = None

    @property
    def inventory(self) -> Path:
        return self.shared_dir / "fleet-inventory.yaml"

    @property
    def known_hosts(self) -> Path:
        return self.shared_dir / "fleet-known_hosts"

    def env(self) -> dict[str, str]:
        return {**self.servers[0].env(), "FLASHHEAD_KNOWN_HOSTS": str(self.known_hosts),
                "FLASHHEAD_HF_TOKEN": TOKEN, "HF_TOKEN": ""}

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_cli("--inventory", str(self.inventory), *args, env=self.env(), timeout=timeout)

    def write_inventory(self) -> None:
        hosts = {name: server.inventory_host(**({"vars": self.host_vars[name]} if self.host_vars[name] else {}))
                 for name, server in zip(self.names, self.servers, strict=True)}
        self.inventory.write_text(yaml.safe_dump(
            {"hosts": hosts, "groups": {"gpu": {"hosts": list(self.names), "vars": self.group_vars}}},
            sort_keys=False))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.git:
            self.git.stop()
        if self.hub:
            self.hub.stop()
        for index in range(len(self.names)):
            _delete_namespace(f"{self.prefix}{index}")
        subprocess.run(["ip", "link", "del", f"{self.prefix}br"], capture_output=True)


def start_fleet(count: int, shared_dir: Path, wheelhouse: Path, wheel: Path) -> Fleet:
    """Start `count` hosts gpu-1..gpu-N (group `gpu`), their sources, and write the inventory, all
    under `shared_dir/fleet` (the session's shared dir holds the other provisioning tests' sources)."""
    prefix = f"fhf{os.getpid() % 10000}"
    shared_dir = shared_dir / "fleet"
    shared_dir.mkdir()
    shared_dir.chmod(0o755)
    fleet = Fleet(shared_dir, prefix)
    try:
        bridge = f"{prefix}br"
        for args in (["link", "add", "name", bridge, "type", "bridge"],
                     ["addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", bridge], ["link", "set", bridge, "up"]):
            subprocess.run(["ip", *args], check=True)
        fleet.git = serve_git(shared_dir, address=BRIDGE_ADDRESS)
        fleet.hub = HubServer(load_repos(), require_token=TOKEN, address=BRIDGE_ADDRESS).start()
        fleet.group_vars = source_vars(wheelhouse, fleet.git, fleet.hub, wheel)
        known = []
        for index in range(count):
            name, address = f"gpu-{index + 1}", f"{SUBNET}.{11 + index}"
            namespace = f"{prefix}{index}"
            _namespace_on_bridge(namespace, bridge, address)
            server = start_sshd(shared_dir / "sshd" / name, address=address, netns=namespace,
                                setenv={"PATH": STANDIN_PATH})
            fleet.servers.append(server)
            fleet.names.append(name)
            fleet.roots[name] = new_model_root(shared_dir, name)
            fleet.host_vars[name] = {"model_root": str(fleet.roots[name])}
            known.append(server.known_hosts.read_text())
        fleet.known_hosts.write_text("".join(known))
        fleet.write_inventory()
    except BaseException:
        fleet.stop()
        raise
    return fleet


def _namespace_on_bridge(namespace: str, bridge: str, address: str) -> None:
    _delete_namespace(namespace)
    outside, inside = f"{namespace}-h"[:15], f"{namespace}-n"[:15]
    for args in (["netns", "add", namespace], ["link", "add", outside, "type", "veth", "peer", "name", inside],
                 ["link", "set", inside, "netns", namespace], ["link", "set", outside, "master", bridge],
                 ["link", "set", outside, "up"]):
        subprocess.run(["ip", *args], check=True)
    for args in (["addr", "add", f"{address}/24", "dev", inside], ["link", "set", inside, "up"],
                 ["link", "set", "lo", "up"]):
        subprocess.run(["ip", "netns", "exec", namespace, "ip", *args], check=True)


def _delete_namespace(namespace: str) -> None:
    subprocess.run(["ip", "link", "del", f"{namespace}-h"[:15]], capture_output=True)
    subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
