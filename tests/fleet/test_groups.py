"""Inventory groups and host patterns: membership, var precedence (all < group < host < --var), typos."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.errors import InventoryError, UsageError
from ops.hostpatterns import is_host_pattern, select_hosts
from ops.inventory import load_inventory, resolve_host, resolve_hosts

FLEET = """
hosts:
  gpu-1: {address: 10.0.0.11}
  gpu-2: {address: 10.0.0.12, vars: {model_type: lite}}
  gpu-3: {address: 10.0.0.13}
  edge-1: {address: 10.0.1.1}
groups:
  gpu:
    hosts: [gpu-1, gpu-2, gpu-3]
    vars: {model_type: pro, model_root: /data/gpu}
  zlast:
    hosts: [gpu-3]
    vars: {model_root: /data/zlast}
  big:
    hosts: [gpu-3, edge-1]
    vars: {model_root: /data/big}
vars:
  model_root: /opt/models/flashhead
"""


@pytest.fixture
def inventory_path(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(FLEET)
    return path


def names(pattern: str, path: Path) -> list[str]:
    return [host.name for host in select_hosts(pattern, load_inventory(path))]


def test_groups_and_membership(inventory_path: Path) -> None:
    inventory = load_inventory(inventory_path)
    assert inventory.groups["gpu"].hosts == ["gpu-1", "gpu-2", "gpu-3"]
    assert inventory.hosts["gpu-3"].groups == ["big", "gpu", "zlast"]
    assert inventory.hosts["edge-1"].groups == ["big"]


def test_var_precedence_all_then_groups_by_name_then_host_then_command_line(inventory_path: Path) -> None:
    hosts = load_inventory(inventory_path).hosts
    assert hosts["gpu-1"].vars == {"model_root": "/data/gpu", "model_type": "pro"}  # group over all
    assert hosts["gpu-2"].vars["model_type"] == "lite"  # host over group
    assert hosts["gpu-3"].vars["model_root"] == "/data/zlast"  # several groups: the last name wins
    assert hosts["edge-1"].vars == {"model_root": "/data/big", "model_type": "lite"}
    one = resolve_host("gpu-2", inventory_path, overrides={"model_type": "pro"})
    assert one.vars["model_type"] == "pro"  # --var over everything
    many = resolve_hosts("gpu", inventory_path, overrides={"model_root": "/cli"}, connector="kubectl")
    assert [(h.vars["model_root"], h.connector, h.node) for h in many] == [("/cli", "kubectl", "gpu-1"),
                                                                           ("/cli", "kubectl", "gpu-2"),
                                                                           ("/cli", "kubectl", "gpu-3")]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("all", ["gpu-1", "gpu-2", "gpu-3", "edge-1"]),
    ("gpu", ["gpu-1", "gpu-2", "gpu-3"]),
    ("gpu-*", ["gpu-1", "gpu-2", "gpu-3"]),
    ("gpu-[12]", ["gpu-1", "gpu-2"]),
    ("edge-1,gpu-2", ["gpu-2", "edge-1"]),  # inventory order, not the pattern's
    ("gpu, edge-1", ["gpu-1", "gpu-2", "gpu-3", "edge-1"]),
    ("gpu,!gpu-2", ["gpu-1", "gpu-3"]),
    ("!big", ["gpu-1", "gpu-2"]),
    ("z*", ["gpu-3"]),  # a glob matches group names too
    ("big,gpu", ["gpu-1", "gpu-2", "gpu-3", "edge-1"]),  # a host in two terms comes once
])
def test_patterns(inventory_path: Path, pattern: str, expected: list[str]) -> None:
    assert names(pattern, inventory_path) == expected


@pytest.mark.parametrize(("pattern", "message"), [
    ("gpus", "no host or group of .* matches 'gpus' \\(did you mean gpu\\?\\)"),
    ("gpu-9*", "matches 'gpu-9\\*'"),
    ("gpu,,edge-1", "has an empty term"),
    ("gpu,!", "has an empty term"),
    ("gpu,!gpu-*", "leaves no host"),
])
def test_bad_patterns_are_usage_errors(inventory_path: Path, pattern: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        select_hosts(pattern, load_inventory(inventory_path))


@pytest.mark.parametrize(("spec", "many"), [
    ("gpu-1", False), ("ubuntu@10.0.0.9:22", False), ("10.0.0.9", False), ("[::1]", False), ("@local", False),
    ("gpu", True), ("all", True), ("gpu-*", True), ("gpu-1,gpu-2", True), ("!gpu-1", True), ("gpu-[12]", True),
])
def test_the_form_of_the_argument_decides_one_host_or_many(inventory_path: Path, spec: str, many: bool) -> None:
    assert is_host_pattern(spec, load_inventory(inventory_path)) is many


def test_a_typo_of_a_group_as_one_host_names_the_group(inventory_path: Path) -> None:
    with pytest.raises(UsageError, match="did you mean gpu\\?") as caught:
        resolve_host("gpx", inventory_path)
    assert "groups: big, gpu, zlast, all" in str(caught.value.remedy)


@pytest.mark.parametrize(("text", "expected"), [
    ("hosts: {a: {}}\ngroups: {g: {hosts: [a], varz: {}}}", "groups.g: unknown key(s): varz (did you mean vars?)"),
    ("hosts: {a: {}}\ngroups: {g: {hosts: [b]}}", "groups.g.hosts: 'b' is not a host of this inventory"),
    ("hosts: {gpu-1: {}}\ngroups: {g: {hosts: [gpu-l]}}", "(did you mean gpu-1?)"),
    ("hosts: {a: {}}\ngroups: {g: {hosts: a}}", "groups.g.hosts: must be a list of host names"),
    ("hosts: {a: {}}\ngroups: {g: {hosts: [a], vars: {model_typ: pro}}}",
     "groups.g.vars.model_typ: unknown var (did you mean model_type?)"),
    ("hosts: {a: {}}\ngroups: {g: {hosts: [a], vars: {model_type: huge}}}", "groups.g.vars.model_type: 'huge'"),
    ("hosts: {a: {}}\ngroups: {all: {hosts: [a]}}", "groups.all: `all` is implicit"),
    ("hosts: {a: {}}\ngroups: {a: {hosts: [a]}}", "groups.a: a host has this name too"),
    ("hosts: {all: {}}", "hosts.all: `all` names every host"),
    ("hosts: {a: {}}\ngroups: [a]", "`groups` must be a mapping"),
    ("hosts: {a: {}}\ngroups: {g: [a]}", "groups.g: must be a mapping"),
    ("hosts: {a: {}}\ngroup: {g: {hosts: [a]}}", "unknown top-level key(s): group (did you mean groups?)"),
])
def test_bad_groups_are_refused_with_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(path) in caught.value.message
    assert expected in caught.value.message
