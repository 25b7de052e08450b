"""Inventory parsing and validation: every error names the file, the key and what is wrong."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ops.errors import InventoryError, UsageError
from ops.inventory import known_vars, load_inventory, resolve_host

GOOD = """
hosts:
  gpu-1:
    address: gpu-1.internal
    user: ubuntu
    port: 2222
    identity_file: ~/.ssh/id_ed25519
    node: k3s-gpu-1
    vars: {model_type: pro}
  edge:
    connector: local
vars:
  model_root: /data/flashhead
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def test_good_inventory(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, GOOD))
    host = inventory.hosts["gpu-1"]
    assert (host.address, host.user, host.port, host.node) == ("gpu-1.internal", "ubuntu", 2222, "k3s-gpu-1")
    assert host.vars == {"model_root": "/data/flashhead", "model_type": "pro"}
    assert host.target == "ubuntu@gpu-1.internal:2222"
    assert inventory.hosts["edge"].connector == "local"


@pytest.mark.parametrize(("text", "expected"), [
    ("hosts: [a, b]", "`hosts` must be a mapping"),
    ("hosts:\n  a: {port: 70000}", "hosts.a.port: 70000 is not a TCP port"),
    ("hosts:\n  a: {port: yes}", "hosts.a.port"),
    ("hosts:\n  a: {connector: telnet}", "hosts.a.connector: 'telnet' is not one of ssh, local, kubectl"),
    ("hosts:\n  a: {adress: x}", "hosts.a: unknown key(s): adress"),
    ("hosts:\n  a: {sudo: maybe}", "hosts.a.sudo: must be true or false"),
    ("vars: {model_type: huge}", "vars.model_type: 'huge' is not one of lite, pro"),
    ("vars: {model_root: relative/path}", "vars.model_root: 'relative/path' must be an absolute path"),
    ("hosts:\n  a: {vars: {model_type: x}}", "hosts.a.vars.model_type"),
    ("hostz: {}", "unknown top-level key(s): hostz"),
    ("hosts: {a: [1]}", "hosts.a: must be a mapping"),
    ("hosts:\n  a: {address: ''}", "hosts.a.address: must be a non-empty"),
    ("hosts: {\n", "not valid YAML"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as error:
        load_inventory(path)
    assert str(path) in error.value.message
    assert expected in error.value.message


def test_host_argument_forms(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert resolve_host("gpu-1", path).address == "gpu-1.internal"
    adhoc = resolve_host("root@203.0.113.7:2200", path)
    assert (adhoc.user, adhoc.address, adhoc.port, adhoc.connector) == ("root", "203.0.113.7", 2200, "ssh")
    assert adhoc.vars["model_root"] == "/data/flashhead"
    assert resolve_host("@local", path).connector == "local"
    assert resolve_host("ubuntu@[::1]:22", path).address == "::1"
    assert resolve_host("gpu-1", path, connector="kubectl").node == "k3s-gpu-1"
    overridden = resolve_host("gpu-1", path, overrides={"model_type": "lite"})
    assert overridden.vars["model_type"] == "lite"


def test_unknown_host_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as error:
        resolve_host("gpu-9", write(tmp_path, GOOD))
    assert "gpu-1" in (error.value.remedy or "") and "not in the inventory" in error.value.message


def test_missing_inventory_allows_adhoc_hosts(tmp_path: Path) -> None:
    host = resolve_host("ubuntu@gpu.example", tmp_path / "absent.yaml")
    assert host.vars == {"model_root": "/opt/models/flashhead", "model_type": "lite"}


def test_a_named_inventory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist"):
        resolve_host("@local", tmp_path / "absent.yaml", required=True)


def _typo(name: str, position: int, kind: int) -> str:
    """One edit of `name`: delete, double or replace the character at `position`."""
    i = position % len(name)
    return [name[:i] + name[i + 1:], name[:i] + name[i] + name[i:], name[:i] + "x" + name[i + 1:]][kind]


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(known_vars())), position=st.integers(0, 40), kind=st.integers(0, 2),
       where=st.sampled_from(["vars", "host", "--var"]))
def test_a_misspelt_var_is_refused_with_the_closest_name(name: str, position: int, kind: int, where: str) -> None:
    wrong = _typo(name, position, kind)
    assume(wrong not in known_vars() and wrong)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inventory.yaml"
        inventory: dict = {"hosts": {"gpu-1": {}}}
        if where == "vars":
            inventory["vars"] = {wrong: "x"}
        elif where == "host":
            inventory["hosts"]["gpu-1"]["vars"] = {wrong: "x"}
        path.write_text(yaml.safe_dump(inventory))
        with pytest.raises(InventoryError) as error:
            resolve_host("gpu-1", path, overrides={wrong: "x"} if where == "--var" else None)
    message = error.value.message
    assert f"{wrong}: unknown var (did you mean " in message
    assert (str(path) in message) if where != "--var" else message.startswith(f"--var {wrong}:")


def test_the_examples_name_the_closest_var(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"vars\.modle_type: unknown var \(did you mean model_type\?\)"):
        load_inventory(write(tmp_path, "vars: {modle_type: pro}\n"))
    with pytest.raises(InventoryError, match=r"--var flashhead_comit: unknown var \(did you mean flashhead_commit\?\)"):
        resolve_host("@local", tmp_path / "absent.yaml", overrides={"flashhead_comit": "abc"})
    with pytest.raises(InventoryError, match=r"unknown key\(s\): adress \(did you mean address\?\)"):
        load_inventory(write(tmp_path, "hosts:\n  a: {adress: x}\n"))


def test_a_custom_playbook_adds_its_vars(tmp_path: Path) -> None:
    play = tmp_path / "play.yaml"
    play.write_text("vars: {site_motd: hi}\nsteps: []\n")
    host = resolve_host("@local", tmp_path / "absent.yaml", overrides={"site_motd": "x"}, playbook=play)
    assert host.vars["site_motd"] == "x"
    with pytest.raises(InventoryError):
        resolve_host("@local", tmp_path / "absent.yaml", overrides={"site_motd": "x"})
