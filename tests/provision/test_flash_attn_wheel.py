"""flash-attn build selection: a pure function over (python tag, torch, CUDA, cxx11abi)."""

from __future__ import annotations

import pytest

from ops.tasks.flash_attn_wheel import TorchBuild, build_jobs, explain_import_error, select_flash_attn_wheel

BASE = "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.0.post2"
TORCH = ["2.4", "2.5", "2.6", "2.7"]
PYTHONS = ["cp39", "cp310", "cp311", "cp312", "cp313"]
GIB = 2**30


@pytest.mark.parametrize("build, filename", [
    (TorchBuild("cp310", "2.7.1+cu128", "12.8", True),
     "flash_attn-2.8.0.post2+cu12torch2.7cxx11abiTRUE-cp310-cp310-linux_x86_64.whl"),
    (TorchBuild("cp312", "2.7.1+cu128", "12.8", False),
     "flash_attn-2.8.0.post2+cu12torch2.7cxx11abiFALSE-cp312-cp312-linux_x86_64.whl"),
    (TorchBuild("cp311", "2.6.0+cu124", "12.4", False),
     "flash_attn-2.8.0.post2+cu12torch2.6cxx11abiFALSE-cp311-cp311-linux_x86_64.whl"),
    (TorchBuild("cp39", "2.4.1", "12.1", True),
     "flash_attn-2.8.0.post2+cu12torch2.4cxx11abiTRUE-cp39-cp39-linux_x86_64.whl"),
])
def test_a_release_wheel_matches_python_torch_cuda_and_abi(build, filename):
    choice = select_flash_attn_wheel("2.8.0.post2", build, BASE, TORCH, PYTHONS)
    assert choice.filename == filename
    assert choice.url == f"{BASE}/{filename}"


@pytest.mark.parametrize("build, reason", [
    (TorchBuild("cp311", "2.8.0+cu128", "12.8", True), "no release wheel for torch 2.8"),
    (TorchBuild("cp311", "2.7.1+cu118", "11.8", True), "no release wheel for CUDA 11"),
    (TorchBuild("cp314", "2.7.1+cu128", "12.8", True), "no release wheel for cp314"),
    (TorchBuild("cp311", "2.7.1+cpu", None, True), "CPU build"),
    (TorchBuild("cp311", "2.7.1", "12.8", True, "linux_aarch64"), "linux_aarch64"),
])
def test_no_matching_wheel_means_a_source_build_with_the_reason(build, reason):
    choice = select_flash_attn_wheel("2.8.0.post2", build, BASE, TORCH, PYTHONS)
    assert choice.url is None and reason in choice.reason


@pytest.mark.parametrize("ram_gib, cpus, jobs", [(8, 16, 1), (18, 16, 2), (64, 16, 7), (256, 16, 16), (512, 4, 4)])
def test_source_build_jobs_are_sized_from_ram(ram_gib, cpus, jobs):
    assert build_jobs(ram_gib * GIB, cpus) == jobs


def test_an_undefined_c10_symbol_is_explained_as_an_abi_mismatch():
    error = ("/opt/models/flashhead/.venv/lib/python3.10/site-packages/"
             "flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so:"
             " undefined symbol: _ZN3c105ErrorC2ENS_14SourceLocationE"
             "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE")
    text = explain_import_error(error, TorchBuild("cp310", "2.7.1+cu128", "12.8", False))
    assert text is not None
    assert text.startswith("ABI mismatch") and "c10::Error" in text and "cxx11abi FALSE" in text
    assert "torch 2.7.1+cu128" in text


def test_other_import_errors_are_not_called_abi_mismatches():
    assert explain_import_error("No module named 'flash_attn'") is None
    other = explain_import_error("undefined symbol: cudaGetDriverEntryPointByVersion")
    assert other is not None and "ABI mismatch" not in other


def fake_torch(monkeypatch, version: str, cuda: str | None, abi: bool) -> None:
    """A torch stand-in module exposing what the plan reads (never installed: GPU-free CI)."""
    import sys
    import types

    module = types.ModuleType("torch")
    module.__version__ = version  # type: ignore[attr-defined]
    module.version = types.SimpleNamespace(cuda=cuda)  # type: ignore[attr-defined]
    module._C = types.SimpleNamespace(_GLIBCXX_USE_CXX11_ABI=abi)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", module)


@pytest.mark.parametrize("abi, flag", [(True, "TRUE"), (False, "FALSE")])
def test_the_plan_reads_the_abi_flag_from_torch(monkeypatch, capsys, abi, flag):
    import json
    import sys

    from ops.tasks.flash_attn_wheel import main

    fake_torch(monkeypatch, "2.7.1+cu128", "12.8", abi)
    config = {"version": "2.8.0.post2", "base_url": BASE, "torch_versions": TORCH, "python_tags": PYTHONS}
    assert main(["plan", json.dumps(config)]) == 0
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert capsys.readouterr().out.strip() == (
        f"url {BASE}/flash_attn-2.8.0.post2+cu12torch2.7cxx11abi{flag}-{tag}-{tag}-linux_x86_64.whl")


def test_the_plan_falls_back_to_a_source_build_sized_from_ram(monkeypatch, capsys):
    import json
    import os

    from ops.tasks.flash_attn_wheel import _mem_total, main

    fake_torch(monkeypatch, "2.9.0+cu130", "13.0", True)
    config = {"version": "2.8.0.post2", "base_url": BASE, "torch_versions": TORCH, "python_tags": PYTHONS}
    assert main(["plan", json.dumps(config)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"build {build_jobs(_mem_total(), os.cpu_count() or 1)}"
    assert "no release wheel for CUDA 13" in captured.err and "torch 2.9" in captured.err
