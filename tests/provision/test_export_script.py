"""`flashhead export-script`: one bash script with the same checks, run on the host over SSH."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import run_cli
from tests.provision.conftest import GPU_STEPS, TOKEN, ProvisionHost, ssh_connector
from tests.provision.helpers import report, statuses


def export(host: ProvisionHost, *args: str) -> str:
    out = host.model_root.parent / "flashhead-provision.sh"
    result = run_cli("--inventory", str(host.inventory), "export-script", "gpu-test", "--out", str(out), *args,
                     env=host.env())
    assert result.returncode == 0, result.stderr
    out.chmod(0o755)
    return str(out)


def run_on_host(host: ProvisionHost, script: str, check_only: bool) -> subprocess.CompletedProcess[str]:
    with ssh_connector(host.sshd) as conn:
        prefix = "FLASHHEAD_CHECK_ONLY=1 " if check_only else ""
        result = conn.run(f"{prefix}bash {script}", check=False, env={"HF_TOKEN": TOKEN})
    return subprocess.CompletedProcess(script, result.exit_status, result.stdout, result.stderr)


def test_the_script_applies_steps_and_the_tool_agrees(fresh_host_factory):
    host = fresh_host_factory("exported")
    steps = ["--step", "preflight", "--step", "venv", "--step", "flashhead_repo"]
    script = export(host, *steps)
    text = Path(script).read_text()
    assert TOKEN not in text and text.startswith("#!/usr/bin/env bash")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    pending = run_on_host(host, script, check_only=True)
    assert pending.returncode == 4, pending.stderr
    assert "pending   preflight" in pending.stderr and not host.model_root.exists()
    applied = run_on_host(host, script, check_only=False)
    assert applied.returncode == 0, applied.stderr
    assert "changed   venv" in applied.stderr and "changed   flashhead_repo" in applied.stderr
    again = run_on_host(host, script, check_only=False)
    assert again.returncode == 0 and "applying" not in again.stderr
    # the tool's own checks agree with what the script did
    check = host.provision("--check", *steps, "--output", "json")
    assert check.returncode == 0, check.stdout
    assert set(statuses(report(check)).values()) == {"ok"}


def test_the_full_script_checks_like_provision_check(fresh_host_factory):
    host = fresh_host_factory("exported-full")
    script = export(host, *[a for s in GPU_STEPS for a in ("--skip", s)])
    text = Path(script).read_text()
    assert "run_step checkpoints" in text and "run_step inference_module" in text
    assert "HF_ENDPOINT=" in text and "HF_TOKEN=" not in text.replace("HF_TOKEN=hf_...", "")
    result = run_on_host(host, script, check_only=True)
    assert result.returncode == 4
    tool = report(host.provision("--check", *[a for s in GPU_STEPS for a in ("--skip", s)], "--output", "json"))
    script_pending = {line.split()[1] for line in result.stderr.splitlines() if line.startswith("pending")}
    assert script_pending == set(tool["pending"])
