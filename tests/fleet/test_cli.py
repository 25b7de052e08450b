"""The fleet output of the CLI, on hosts that answer fast: loopback ports where no sshd listens
(doctor/provision: unreachable) and export-script (nothing connects)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.sshd import free_port

HOSTS = ["h1", "h2", "h3"]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    hosts = {name: {"address": "127.0.0.1", "port": free_port(), "user": "nobody"} for name in HOSTS}
    path.write_text(yaml.safe_dump({"hosts": hosts, "groups": {"closed": {"hosts": HOSTS}}}))
    return path


def fleet_cli(inventory: Path, *args: str):
    return run_cli("--inventory", str(inventory), *args, env={"FLASHHEAD_KNOWN_HOSTS": os.devnull})


def json_lines(stdout: str) -> dict[str, dict]:
    return {doc["host"]: doc for doc in map(json.loads, stdout.splitlines())}


def test_json_lines_one_per_host_and_the_worst_exit_code(inventory: Path) -> None:
    result = fleet_cli(inventory, "doctor", "closed", "--output", "json")
    assert result.returncode == 3, result.stderr
    lines = json_lines(result.stdout)
    assert sorted(lines) == HOSTS
    for line in lines.values():
        assert (line["status"], line["exit_code"], line["result"]["ok"]) == ("unreachable", 3, False)
        assert line["target"].startswith("nobody@127.0.0.1:") and "no SSH server listens" in json.dumps(line)


def test_one_host_keeps_the_single_host_document(inventory: Path) -> None:
    result = fleet_cli(inventory, "doctor", "h1", "--output", "json")
    assert result.returncode == 3
    document = json.loads(result.stdout)  # one document, as before groups existed
    assert document["ok"] is False and document["host"] == "h1" and "result" not in document


def test_text_summary_and_each_hosts_error_in_one_piece(inventory: Path) -> None:
    result = fleet_cli(inventory, "provision", "h*", "--check")
    assert result.returncode == 3
    assert "3 unreachable" in result.stdout and "provision: 3 host(s)" in result.stdout
    blocks = result.stderr.split("--- ")[1:]
    assert [block.split()[0] for block in sorted(blocks)] == HOSTS
    for block in blocks:
        assert block.count("error:") == 1 and block.count("what to do:") == 1


def test_max_fail_percentage_skips_hosts_not_started(inventory: Path) -> None:
    result = fleet_cli(inventory, "facts", "all", "--forks", "1", "--max-fail-percentage", "0", "-o", "json")
    assert result.returncode == 3
    lines = json_lines(result.stdout)
    assert lines["h1"]["status"] == "unreachable"
    for name in ("h2", "h3"):
        assert lines[name] | {"target": None} == {"host": name, "target": None, "status": "skipped",
                                                  "exit_code": None, "seconds": 0.0, "result": None}


@pytest.mark.parametrize(("pattern", "message"), [
    ("closd", "no host or group of .* matches 'closd' (did you mean closed?)"),
    ("h9*", "matches 'h9*'"),
])
def test_a_pattern_that_matches_nothing_is_a_usage_error(inventory: Path, pattern: str, message: str) -> None:
    result = fleet_cli(inventory, "doctor", f"{pattern},h1")
    assert result.returncode == 2
    assert message.split(".*")[-1] in result.stderr


def test_export_script_writes_one_script_per_host_into_a_folder(inventory: Path, tmp_path: Path) -> None:
    out = tmp_path / "scripts"
    out.mkdir()
    (out / "h2.sh").symlink_to(tmp_path / "elsewhere.sh")  # never followed, never replaced
    result = fleet_cli(inventory, "export-script", "closed", "--out", str(out), "--step", "preflight", "-o", "json")
    assert result.returncode == 2, result.stderr
    lines = json_lines(result.stdout)
    assert {name: line["status"] for name, line in lines.items()} == {"h1": "ok", "h2": "failed", "h3": "ok"}
    assert "symbolic link" in lines["h2"]["result"]["message"]
    for name in ("h1", "h3"):
        script = out / f"{name}.sh"
        assert os.access(script, os.X_OK) and "run_step preflight" in script.read_text()
        assert lines[name]["result"]["script"] == str(script)
    assert (out / "h2.sh").is_symlink() and not (tmp_path / "elsewhere.sh").exists()


@pytest.mark.parametrize("make", ["file", "missing-out"])
def test_export_script_for_a_group_needs_a_folder(inventory: Path, tmp_path: Path, make: str) -> None:
    args = []
    if make == "file":
        (tmp_path / "a-file").write_text("mine\n")
        args = ["--out", str(tmp_path / "a-file")]
    result = fleet_cli(inventory, "export-script", "closed", *args)
    assert result.returncode == 2
    assert ("is not a folder" if make == "file" else "give --out DIR") in result.stderr
    if make == "file":
        assert (tmp_path / "a-file").read_text() == "mine\n"
