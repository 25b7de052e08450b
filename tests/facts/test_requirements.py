"""The host requirements: one judgement of facts against the play's vars (doctor, facts, preflight)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.facts.gather import MARKER, parse_facts
from ops.facts.requirements import GIB, at_least, blockers, check_host, disk_needed_bytes
from ops.playbook.load import play_vars
from tests.facts.test_parsers import H100_QUERY, NVIDIA_SMI_HEADER, UBUNTU_2404

VARS = play_vars()


def facts(gpu_text: str, free: int = 500 * GIB, used: int = 0, os_text: str = UBUNTU_2404) -> dict:
    sections = {"os": os_text, "memory": "8\nMemTotal: 1000 kB\n", "python": "", "gpu": gpu_text, "cuda": "",
                "disk": f"/opt\n/dev/sda1 {2 * free} 1 {free} 50% /\n@@used {used}\n"}
    return parse_facts("".join(f"{MARKER}{name}\n{body}" for name, body in sections.items()), "h")


def verdicts(found: dict, **overrides: object) -> dict:
    return {v.key: v for v in check_host(found, {**VARS, **overrides})}


def test_an_h100_on_ubuntu_24_04_passes_everything() -> None:
    judged = verdicts(facts(f"{H100_QUERY}\n@@rc:0\n{NVIDIA_SMI_HEADER}\n"))
    assert not blockers(list(judged.values()))
    assert judged["driver"].detail == "driver 580.159.04, needs ≥ 570.26" and judged["cuda"].blocks is False
    json.dumps(facts(H100_QUERY))


def test_an_old_driver_and_an_old_arch_block_with_the_play_thresholds() -> None:
    line = "0, Tesla T4, 535.183.01, 15360, 7.5, 00000000:00:04.0"
    judged = verdicts(facts(f"{line}\n@@rc:0\n"))
    assert judged["driver"].problem == "NVIDIA driver 535.183.01 is too old for CUDA 12.8 (needs >= 570.26)"
    assert "FlashAttention 2 needs >= 8.0" in judged["gpu_arch"].problem
    assert verdicts(facts(f"{line}\n@@rc:0\n"), min_driver="535", min_compute_capability="7.5")["driver"].ok


def test_no_gpu_blocks_and_leaves_driver_and_arch_unjudged() -> None:
    judged = verdicts(facts("@@missing\n"))
    assert judged["gpu"].ok is False and judged["driver"].ok is None and judged["gpu_arch"].ok is None
    assert [v.key for v in blockers(list(judged.values()))] == ["gpu"]


@pytest.mark.parametrize("release, ok", [("22.04", True), ("24.04", True), ("20.04", False), ("18.04", False)])
def test_the_os_list_is_the_play_var(release: str, ok: bool) -> None:
    judged = verdicts(facts(H100_QUERY + "\n@@rc:0\n", os_text=UBUNTU_2404.replace("24.04", release)))
    assert judged["os"].ok is ok
    assert verdicts(facts(H100_QUERY + "\n@@rc:0\n", os_text=UBUNTU_2404.replace("24.04", release)),
                    supported_os=[f"ubuntu:{release}"])["os"].ok


def test_disk_follows_model_type_the_disk_gib_var_and_what_is_there() -> None:
    lite, pro = disk_needed_bytes(VARS), disk_needed_bytes({**VARS, "model_type": "pro"})
    assert lite == int(21.5 * GIB * 1.2) == pro  # lite and pro checkpoints are both 7 GiB
    assert disk_needed_bytes({**VARS, "disk_gib": {"venv": 1, "checkpoints_pro": 100}}) == int(1.2 * GIB)
    small = facts(H100_QUERY + "\n@@rc:0\n", free=10 * GIB)
    assert verdicts(small)["disk"].ok is False and "not enough free disk at /opt" in verdicts(small)["disk"].problem
    assert verdicts(small, disk_gib={"venv": 1})["disk"].ok is True
    holding = facts(H100_QUERY + "\n@@rc:0\n", free=10 * GIB, used=20 * GIB)
    assert verdicts(holding)["disk"].ok is True  # what model_root already holds counts as done


@given(found=st.lists(st.integers(0, 999), min_size=1, max_size=4),
       wanted=st.lists(st.integers(0, 999), min_size=1, max_size=4))
def test_versions_compare_as_numbers(found: list[int], wanted: list[int]) -> None:
    assert at_least(".".join(map(str, found)), ".".join(map(str, wanted))) is (tuple(found) >= tuple(wanted))
