"""`--host NAME`: the GPU host's deploy values from the inventory the playbook used (and its facts)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ops.errors import UsageError

if TYPE_CHECKING:
    from ops.inventory import Host


def values_from_host(inventory_path: str | Path, name: str) -> dict[str, str]:
    """node (the host's `node:`, else its name), model_root and model_type of inventory host `name`."""
    host = _host(inventory_path, name)
    values = {"node": host.node or host.name, "model_root": str(host.vars["model_root"])}
    if "model_type" in host.vars:
        values["model_type"] = str(host.vars["model_type"])
    return values


def gpus_from_facts(inventory_path: str | Path, name: str) -> int:
    """How many GPUs inventory host `name` has, from its GPU fact (a read-only `nvidia-smi` query)."""
    from ops.connectors import connect
    from ops.facts import gpu

    host = _host(inventory_path, name)
    with connect(host) as connector:
        found = gpu.parse(connector.run(gpu.command(host.vars), check=False).stdout)
    if not found["gpus"]:
        raise UsageError(f"--gpus-from-facts: host {name} shows no GPU: {found['error']}",
                         f"`flashhead facts {name}` shows what the host has; or pass --set gpus=N")
    return len(found["gpus"])


def _host(inventory_path: str | Path, name: str) -> Host:
    from ops.inventory import load_inventory

    inventory = load_inventory(inventory_path)
    host = inventory.hosts.get(name)
    if host is None:
        known = ", ".join(sorted(inventory.hosts)) or "none"
        raise UsageError(f"--host {name}: not in the inventory {inventory_path}",
                         f"inventory hosts: {known}; or pass --set node=NODE --set model_root=PATH")
    return host
