"""Hosts and vars from an inventory YAML file, validated with errors that name file and key.

    hosts:
      gpu-1:
        address: gpu-1.internal      # or an alias from ~/.ssh/config
        user: ubuntu
        port: 22
        identity_file: ~/.ssh/id_ed25519
        sudo: true                   # passwordless sudo is expected
        connector: ssh               # ssh | local | kubectl
        node: gpu-1                  # Kubernetes node name (kubectl connector, deploy)
        vars: {model_type: pro}      # per-host overrides
    groups:
      gpu:                           # a host may be in several groups; `all` is every host
        hosts: [gpu-1]
        vars: {model_type: pro}
    vars:
      model_root: /opt/models/flashhead
      model_type: lite

A host's vars, lowest precedence first (as Ansible): the top-level `vars` (group `all`), its groups'
`vars` in the order of the group names (the last name wins where two set the same var), its own
`vars`, then `--var` on the command line.

A HOST argument is an inventory name, `user@address[:port]` (or a bare address), or `@local`; a group
or pattern (ops/hostpatterns.py) names several.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inference.backends import MODEL_TYPES
from ops.errors import InventoryError, UsageError

CONNECTORS = ("ssh", "local", "kubectl")
DEFAULT_VARS: dict[str, Any] = {"model_root": "/opt/models/flashhead", "model_type": "lite"}
HOST_KEYS = {"address", "user", "port", "identity_file", "sudo", "connector", "node", "vars"}
GROUP_KEYS = {"hosts", "vars"}
TOP_KEYS = ("hosts", "groups", "vars")
ALL = "all"  # the implicit group of every host
ADHOC_HOST = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<address>\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d+))?$")


@dataclass
class Host:
    """One host to work on, with everything a connector needs."""

    name: str
    address: str | None = None
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    sudo: bool = True
    connector: str = "ssh"
    node: str | None = None
    vars: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_VARS))
    groups: list[str] = field(default_factory=list)

    @property
    def model_root(self) -> str:
        return str(self.vars["model_root"])

    @property
    def target(self) -> str:
        """How to name this host in messages and commands (`user@address:port`)."""
        if self.connector == "local":
            return "@local"
        if self.connector == "kubectl":
            return f"node/{self.node or self.name}"
        text = f"{self.user}@{self.address}" if self.user else str(self.address)
        return f"{text}:{self.port}" if self.port else text


@dataclass
class Group:
    """A named set of inventory hosts and the vars they share."""

    name: str
    hosts: list[str]
    vars: dict[str, Any]


@dataclass
class Inventory:
    path: Path | None
    hosts: dict[str, Host]
    vars: dict[str, Any]
    groups: dict[str, Group] = field(default_factory=dict)


def known_vars(playbook: str | Path | None = None) -> set[str]:
    """The var names an inventory or `--var` may set: the playbook's vars and the connectors'."""
    from ops.connectors.kubepod import KUBECTL_VARS
    from ops.playbook.load import playbook_var_names

    names = playbook_var_names(None) | set(KUBECTL_VARS) | set(DEFAULT_VARS)
    return names | playbook_var_names(playbook) if playbook else names


def closest(name: str, choices: set[str] | list[str] | tuple[str, ...]) -> str:
    """` (did you mean X?)` for the nearest choice, or nothing when none is near."""
    near = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def load_inventory(path: str | Path, *, required: bool = False, known: set[str] | None = None) -> Inventory:
    """Read and validate an inventory file. A missing file is an empty inventory, unless `required`
    (a path the user named): then it is a usage error."""
    file = Path(path).expanduser()
    if not file.exists():
        if required:
            raise InventoryError(f"the inventory {file} does not exist",
                                 "check the path given to --inventory/-i or FLASHHEAD_INVENTORY; leave both unset "
                                 "to use ./inventory.yaml when present")
        return Inventory(path=None, hosts={}, vars=dict(DEFAULT_VARS))
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InventoryError(f"{file}: not valid YAML: {exc}", "fix the YAML syntax at the line shown") from exc
    except OSError as exc:
        raise InventoryError(f"{file}: cannot read: {exc.strerror}", "check the path and permissions") from exc
    return parse_inventory(raw, str(file), known)


def parse_inventory(raw: Any, source: str, known: set[str] | None = None) -> Inventory:
    """Validate parsed YAML. Every error says which file, which key and what is wrong."""
    if not isinstance(raw, dict):
        raise InventoryError(f"{source}: the top level must be a mapping with `hosts:`, `groups:` and `vars:`")
    unknown = set(raw) - set(TOP_KEYS)
    if unknown:
        name = sorted(unknown)[0]
        raise InventoryError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}"
                             f"{closest(name, TOP_KEYS)}", "the inventory has only `hosts:`, `groups:` and `vars:`")
    known = known or known_vars()
    global_vars = _validate_vars(raw.get("vars") or {}, source, "vars", dict(DEFAULT_VARS), known)
    hosts_raw = raw.get("hosts") or {}
    if not isinstance(hosts_raw, dict):
        raise InventoryError(f"{source}: `hosts` must be a mapping of host name to settings")
    if ALL in hosts_raw:
        raise InventoryError(f"{source}: hosts.{ALL}: `{ALL}` names every host; give this host another name")
    groups = _parse_groups(raw.get("groups") or {}, source, [str(name) for name in hosts_raw], global_vars, known)
    hosts = {}
    for name, spec in hosts_raw.items():
        member_of = [group.name for group in sorted(groups.values(), key=lambda g: g.name) if str(name) in group.hosts]
        base = dict(global_vars)
        for group_name in member_of:
            base.update(groups[group_name].vars)
        hosts[str(name)] = _parse_host(str(name), spec, source, base, known, member_of)
    return Inventory(path=Path(source), hosts=hosts, vars=global_vars, groups=groups)


def _refuse_unknown_keys(spec: dict, allowed: set[str], where: str) -> None:
    """A key outside `allowed` is a typo: refuse it with the closest allowed one."""
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise InventoryError(f"{where}: unknown key(s): {', '.join(unknown)}{closest(unknown[0], allowed)}",
                             f"allowed keys: {', '.join(sorted(allowed))}")


def _parse_groups(raw: Any, source: str, host_names: list[str], global_vars: dict[str, Any],
                  known: set[str]) -> dict[str, Group]:
    if not isinstance(raw, dict):
        raise InventoryError(f"{source}: `groups` must be a mapping of group name to `hosts:` and `vars:`")
    groups = {}
    for name, spec in ((str(name), spec) for name, spec in raw.items()):
        where = f"{source}: groups.{name}"
        if name == ALL:
            raise InventoryError(f"{where}: `{ALL}` is implicit (every host); its vars are the top-level `vars:`")
        if name in host_names:
            raise InventoryError(f"{where}: a host has this name too; a pattern could not tell them apart",
                                 "rename the group or the host")
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise InventoryError(f"{where}: must be a mapping with `hosts:` (a list of host names) and `vars:`")
        _refuse_unknown_keys(spec, GROUP_KEYS, where)
        members = spec.get("hosts") or []
        if not isinstance(members, list) or not all(isinstance(member, str) for member in members):
            raise InventoryError(f"{where}.hosts: must be a list of host names")
        for member in members:
            if member not in host_names:
                raise InventoryError(f"{where}.hosts: {member!r} is not a host of this inventory"
                                     f"{closest(member, host_names)}", "list hosts defined under `hosts:`")
        values = spec.get("vars") or {}
        _validate_vars(values, source, f"groups.{name}.vars", dict(global_vars), known)
        groups[name] = Group(name, list(dict.fromkeys(members)), dict(values))
    return groups


def _parse_host(name: str, spec: Any, source: str, base_vars: dict[str, Any], known: set[str],
                groups: list[str]) -> Host:
    where = f"{source}: hosts.{name}"
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise InventoryError(f"{where}: must be a mapping (address, user, port, ...)")
    _refuse_unknown_keys(spec, HOST_KEYS, where)
    connector = spec.get("connector", "ssh")
    if connector not in CONNECTORS:
        raise InventoryError(f"{where}.connector: {connector!r} is not one of {', '.join(CONNECTORS)}")
    address = spec.get("address", name if connector == "ssh" else None)
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise InventoryError(f"{where}.address: must be a non-empty host name or IP address")
    port = spec.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise InventoryError(f"{where}.port: {port!r} is not a TCP port (1-65535)")
    for key in ("user", "identity_file", "node"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise InventoryError(f"{where}.{key}: must be a string")
    sudo = spec.get("sudo", True)
    if not isinstance(sudo, bool):
        raise InventoryError(f"{where}.sudo: must be true or false")
    host_vars = _validate_vars(spec.get("vars") or {}, source, f"hosts.{name}.vars", base_vars, known)
    return Host(name=name, address=address, user=spec.get("user"), port=port,
                identity_file=spec.get("identity_file"), sudo=sudo, connector=connector,
                node=spec.get("node"), vars=host_vars, groups=groups)


def _validate_vars(values: Any, source: str, key: str, base: dict[str, Any], known: set[str]) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise InventoryError(f"{source}: {key}: must be a mapping of variable name to value")
    for name in sorted(map(str, values)):
        if name not in known:
            where = f"--var {name}" if key == "--var" else f"{source}: {key}.{name}"
            raise InventoryError(f"{where}: unknown var{closest(name, known)}",
                                 "vars are those of the playbook's `vars:` block (playbooks/flashhead.yaml) and "
                                 "kubectl_namespace, kubectl_image, kubectl_tolerations; fix the spelling")
    merged = {**base, **values}
    if merged["model_type"] not in MODEL_TYPES:
        raise InventoryError(f"{source}: {key}.model_type: {merged['model_type']!r} is not one of "
                             f"{', '.join(MODEL_TYPES)}")
    root = merged["model_root"]
    if not isinstance(root, str) or not root.startswith("/"):
        raise InventoryError(f"{source}: {key}.model_root: {root!r} must be an absolute path")
    return merged


def resolve_host(spec: str, inventory_path: str | Path, *, connector: str | None = None,
                 overrides: dict[str, Any] | None = None, required: bool = False,
                 playbook: str | Path | None = None) -> Host:
    """Turn a HOST argument into a Host: an inventory name, `user@address[:port]`, or `@local`.

    `required`: the inventory was named by the user and must exist. `playbook`: a play whose vars
    the inventory and `overrides` may set too (besides the shipped play's)."""
    known = known_vars(playbook)
    inventory = load_inventory(inventory_path, required=required, known=known)
    if spec == "@local":
        host = Host(name="@local", connector="local", sudo=True, vars=dict(inventory.vars))
    elif spec in inventory.hosts:
        host = inventory.hosts[spec]
    else:
        host = _adhoc_host(spec, inventory, inventory_path)
    return apply_command_line(host, connector, overrides, known)


def resolve_hosts(pattern: str, inventory_path: str | Path, *, connector: str | None = None,
                  overrides: dict[str, Any] | None = None, required: bool = False,
                  playbook: str | Path | None = None) -> list[Host]:
    """The inventory hosts a group or pattern names (see ops/hostpatterns.py), in inventory order,
    each with `--connector` and the `--var` overrides applied as resolve_host applies them."""
    from ops.hostpatterns import select_hosts

    known = known_vars(playbook)
    inventory = load_inventory(inventory_path, required=required, known=known)
    return [apply_command_line(host, connector, overrides, known) for host in select_hosts(pattern, inventory)]


def apply_command_line(host: Host, connector: str | None, overrides: dict[str, Any] | None,
                       known: set[str]) -> Host:
    """`--connector` and `--var` on top of what the inventory says: the highest precedence."""
    if connector:
        if connector not in CONNECTORS:
            raise UsageError(f"--connector {connector!r} is not one of {', '.join(CONNECTORS)}")
        host.connector = connector
        if connector == "kubectl" and not host.node:
            host.node = host.name
    if overrides:
        host.vars = _validate_vars(overrides, "command line", "--var", host.vars, known)
    return host


def _adhoc_host(spec: str, inventory: Inventory, inventory_path: str | Path) -> Host:
    match = ADHOC_HOST.match(spec)
    if not match or ("@" not in spec and ":" not in spec and "." not in spec and inventory.hosts):
        known = ", ".join(sorted(inventory.hosts)) or "none"
        groups = ", ".join([*sorted(inventory.groups), ALL])
        where = inventory.path or f"{inventory_path} (not found)"
        near = closest(spec, [*inventory.hosts, *inventory.groups, ALL])
        raise UsageError(f"host {spec!r} is not in the inventory {where} and is not user@address[:port]{near}",
                         f"known hosts: {known}; groups: {groups}; or pass user@address[:port], or @local")
    return Host(name=spec, address=match["address"].strip("[]"), user=match["user"],
                port=int(match["port"]) if match["port"] else None, vars=dict(inventory.vars))
