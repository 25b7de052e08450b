"""`--host NAME`: the single-GPU host's deploy values from the inventory the playbook used."""

from __future__ import annotations

from pathlib import Path

from ops.errors import UsageError


def values_from_host(inventory_path: str | Path, name: str) -> dict[str, str]:
    """node (the host's `node:`, else its name), model_root and model_type of inventory host `name`."""
    from ops.inventory import load_inventory

    inventory = load_inventory(inventory_path)
    host = inventory.hosts.get(name)
    if host is None:
        known = ", ".join(sorted(inventory.hosts)) or "none"
        raise UsageError(f"--host {name}: not in the inventory {inventory_path}",
                         f"inventory hosts: {known}; or pass --set node=NODE --set model_root=PATH")
    values = {"node": host.node or host.name, "model_root": str(host.vars["model_root"])}
    if "model_type" in host.vars:
        values["model_type"] = str(host.vars["model_type"])
    return values
