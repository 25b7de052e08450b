"""Facts gathered over real SSH from a host with the (test stand-in) H100 nvidia-smi on its PATH."""

from __future__ import annotations

import json

from ops.facts import gather_facts
from ops.inventory import Host
from tests.conftest import run_cli
from tests.sshd import SSHServer


def test_facts_over_ssh(ssh_env: SSHServer) -> None:
    from ops.connectors.ssh import SSHConnector

    host = Host(name="gpu", address=ssh_env.address, port=ssh_env.port, user=ssh_env.user,
                identity_file=str(ssh_env.client_key))
    with SSHConnector(host) as conn:
        facts = gather_facts(conn)
    assert facts["gpu"]["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert facts["verdicts"]["driver_supports_cuda_12_8"] is True
    assert facts["verdicts"]["flash_attn2_supported"] is True
    assert facts["disk"]["free_bytes"] > 0
    assert facts["memory"]["cpus"] >= 1


def test_facts_local_json_schema() -> None:
    done = run_cli("facts", "@local", "--output", "json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["schema"] == "flashhead.facts/v1"
    for key in ("os", "memory", "disk", "python", "gpu", "cuda", "verdicts"):
        assert key in facts
    for key in ("distro", "version", "kernel", "arch"):
        assert facts["os"][key]
    assert set(facts["verdicts"]) >= {"nvidia_gpu", "driver_supports_cuda_12_8", "flash_attn2_supported"}
