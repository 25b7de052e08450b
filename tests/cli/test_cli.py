"""The CLI as users and agents see it: verbs, exit codes, JSON, the refused-key diagnosis."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.sshd import SSHServer, keygen

VERBS = ["doctor", "facts", "provision", "export-script", "deploy", "serve", "accept", "demo"]


def test_help_lists_every_verb() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for verb in VERBS:
        assert f"  {verb} " in done.stdout


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from ops.cli.main import cli; "
            "heavy = [m for m in ('kubernetes', 'fabric', 'paramiko', 'rich.table', 'starlette', 'torch', 'httpx') "
            "if m in sys.modules]; print(heavy)")
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_usage_error_exit_2() -> None:
    assert run_cli("facts").returncode == 2
    assert run_cli("no-such-verb").returncode == 2


def test_bad_inventory_exit_2_names_file_and_key(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text("hosts:\n  gpu: {port: 0}\n")
    done = run_cli("--inventory", str(inventory), "facts", "gpu", "--output", "json")
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["ok"] is False and error["exit_code"] == 2
    assert str(inventory) in error["message"] and "hosts.gpu.port" in error["message"]


def _inventory(tmp_path: Path, server: SSHServer, identity: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"hosts:\n  gpu:\n    address: {server.address}\n    port: {server.port}\n"
                    f"    user: {server.user}\n    identity_file: {identity}\n")
    return path


def test_doctor_refused_key_prints_public_key_and_fix(ssh_env: SSHServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "id_ed25519_stranger", "agent@ci")
    done = run_cli("-i", str(_inventory(tmp_path, ssh_env, stranger)), "doctor", "gpu")
    assert done.returncode == 3, done.stdout + done.stderr
    public_line = Path(f"{stranger}.pub").read_text().strip()
    text = " ".join(done.stdout.split())
    assert " ".join(public_line.split()) in text
    assert f"ssh-copy-id -i {stranger}.pub" in text
    assert "--connector kubectl" in text and "flashhead export-script gpu" in text
    assert "✗ authenticate" in done.stdout


def test_doctor_refused_key_json(ssh_env: SSHServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "id_ed25519_stranger", "agent@ci")
    done = run_cli("-i", str(_inventory(tmp_path, ssh_env, stranger)), "doctor", "gpu", "-o", "json")
    assert done.returncode == 3
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["exit_code"] == 3
    auth = next(c for c in report["checks"] if c["name"] == "authenticate")
    assert auth["ok"] is False and "ssh-copy-id" in auth["remedy"]
    assert report["details"]["offered_keys"][0]["public_key"] == Path(f"{stranger}.pub").read_text().strip()


def test_doctor_all_green_over_ssh(ssh_env: SSHServer, tmp_path: Path) -> None:
    done = run_cli("-i", str(_inventory(tmp_path, ssh_env, ssh_env.client_key)), "doctor", "gpu",
                   "--var", f"model_root={tmp_path}/models", "-o", "json")
    report = json.loads(done.stdout)
    names = {c["name"]: c["ok"] for c in report["checks"]}
    assert names["authenticate"] and names["sudo without prompt"] and names["NVIDIA GPU"]
    assert names["driver supports CUDA 12.8"] and names["FlashAttention 2 arch"]
    assert done.returncode == (0 if report["ok"] else 1)


def test_doctor_unknown_host_key_refused_then_accepted(ssh_env: SSHServer, tmp_path: Path) -> None:
    ssh_env.known_hosts.write_text("")
    inventory = _inventory(tmp_path, ssh_env, ssh_env.client_key)
    refused = run_cli("-i", str(inventory), "doctor", "gpu")
    assert refused.returncode == 3
    assert "SHA256:" in refused.stdout and "--accept-new-host-key" in refused.stdout
    accepted = run_cli("-i", str(inventory), "doctor", "gpu", "--accept-new-host-key", "-o", "json")
    authenticate = json.loads(accepted.stdout)["checks"][1]
    assert authenticate == {"name": "authenticate", "ok": True, "remedy": None,
                            "detail": f"as {ssh_env.user}@{ssh_env.address}:{ssh_env.port}"}


def test_doctor_unreachable(tmp_path: Path) -> None:
    from tests.sshd import free_port

    done = run_cli("doctor", f"nobody@127.0.0.1:{free_port()}", "-o", "json")
    assert done.returncode == 3
    report = json.loads(done.stdout)
    assert report["checks"][0]["name"] == "connect" and "connection refused" in report["checks"][0]["detail"]


def test_missing_dependency_is_a_clear_usage_error() -> None:
    import subprocess
    import sys
    code = ("import sys; sys.modules['fabric'] = None; from ops.cli.main import main; "
            "main(['doctor', 'nobody@127.0.0.1:1'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "lacks the Python module 'fabric'" in done.stderr and "pip install" in done.stderr


def test_doctor_with_no_key_at_all_says_so_and_how_to_make_one(ssh_env: SSHServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    done = run_cli("doctor", f"{ssh_env.user}@{ssh_env.address}:{ssh_env.port}", "-o", "json",
                   env={"HOME": str(home), "SSH_AUTH_SOCK": ""}, cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    report = json.loads(done.stdout)
    auth = next(c for c in report["checks"] if c["name"] == "authenticate")
    assert auth["ok"] is False and "no SSH key to offer" in auth["detail"]
    assert "ssh-agent (SSH_AUTH_SOCK is unset)" in auth["detail"] and "~/.ssh/id_ed25519" in auth["detail"]
    assert "ssh-keygen -t ed25519" in auth["remedy"] and "--identity-file" in auth["remedy"]
    assert "speaks SSH" not in done.stdout
    assert str(home / ".ssh" / "id_ed25519") in report["details"]["looked_in"]


def test_doctor_with_a_missing_key_file_names_the_path(ssh_env: SSHServer, tmp_path: Path) -> None:
    missing = tmp_path / "keys" / "id_gone"
    for args in (["-i", str(_inventory(tmp_path, ssh_env, missing)), "doctor", "gpu"],
                 ["doctor", f"{ssh_env.user}@{ssh_env.address}:{ssh_env.port}", "-k", str(missing)]):
        done = run_cli(*args, "-o", "json", cwd=tmp_path)
        assert done.returncode == 3, done.stdout + done.stderr
        checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
        assert checks["connect"]["ok"] is None
        assert f"the SSH key file {missing} does not exist" in checks["authenticate"]["detail"]
        assert f"ssh-keygen -t ed25519 -f {missing}" in checks["authenticate"]["remedy"]
        assert "network route" not in done.stdout


def test_identity_file_flag_overrides_the_inventory(ssh_env: SSHServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "id_ed25519_stranger", "agent@ci")
    inventory = _inventory(tmp_path, ssh_env, stranger)
    done = run_cli("-i", str(inventory), "doctor", "gpu", "--identity-file", str(ssh_env.client_key), "-o", "json",
                   "--var", f"model_root={tmp_path}/models")
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["authenticate"]["ok"] is True, done.stdout
    assert "ssh's -i; here -i is --inventory" in " ".join(run_cli("doctor", "--help").stdout.split())
