"""Facts gathered over real SSH from a host with the (test stand-in) H100 nvidia-smi on its PATH, and
the one judgement of the host requirements that facts, doctor and preflight share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.facts import gather_facts
from ops.inventory import Host
from ops.playbook.load import play_vars
from tests.conftest import run_cli
from tests.sshd import SSHServer


def test_facts_over_ssh(ssh_env: SSHServer) -> None:
    from ops.connectors.ssh import SSHConnector

    host = Host(name="gpu", address=ssh_env.address, port=ssh_env.port, user=ssh_env.user,
                identity_file=str(ssh_env.client_key))
    with SSHConnector(host) as conn:
        facts = gather_facts(conn, play_vars(host.vars))
    assert facts["gpu"]["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    judged = {v["key"]: v["ok"] for v in facts["verdicts"]["requirements"]}
    assert judged["driver"] is True and judged["gpu_arch"] is True
    assert facts["disk"]["free_bytes"] > 0
    assert facts["memory"]["cpus"] >= 1


def test_facts_local_json_schema() -> None:
    done = run_cli("facts", "@local", "--output", "json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["schema"] == "flashhead.facts/v2"
    for key in ("os", "memory", "disk", "python", "gpu", "cuda", "verdicts"):
        assert key in facts
    for key in ("distro", "version", "kernel", "arch"):
        assert facts["os"][key]
    assert {v["key"] for v in facts["verdicts"]["requirements"]} == {
        "gpu", "driver", "gpu_arch", "os", "arch", "disk", "cuda"}


@pytest.mark.parametrize("disk_gib, fits", [('{"venv": 0.001}', True), ('{"venv": 100000}', False)])
@pytest.mark.parametrize("min_driver, driver_ok", [("570.26", True), ("999.1", False)])
def test_one_var_changes_facts_doctor_and_preflight_alike(ssh_env: SSHServer, tmp_path: Path, disk_gib: str,
                                                          fits: bool, min_driver: str, driver_ok: bool) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(json.dumps({"hosts": {"gpu": ssh_env.inventory_host()}}))
    common = ["--var", f"model_root={tmp_path}/models/flashhead", "--var", f"disk_gib={disk_gib}",
              "--var", f"min_driver={min_driver}", "-o", "json"]
    facts = json.loads(run_cli("-i", str(inventory), "facts", "gpu", *common).stdout)
    judged = {v["key"]: v["ok"] for v in facts["verdicts"]["requirements"]}
    doctor = json.loads(run_cli("-i", str(inventory), "doctor", "gpu", *common).stdout)
    checks = {c["name"]: c["ok"] for c in doctor["checks"]}
    check = run_cli("-i", str(inventory), "provision", "gpu", "--check", *common)
    preflight = next(s for s in json.loads(check.stdout)["steps"] if s["name"] == "preflight")
    assert (judged["disk"], checks["disk"]) == (fits, fits)
    assert (judged["driver"], checks["driver supports CUDA 12.8"]) == (driver_ok, driver_ok)
    assert preflight["status"] == ("pending" if fits and driver_ok else "blocked"), preflight
    assert ("not enough free disk" in preflight["summary"]) is not fits
    assert ("is too old for CUDA 12.8 (needs >= 999.1)" in preflight["summary"]) is not driver_ok
