"""Fact parsers on real captured output formats (tests/fixtures/nvidia-smi-h100.md and friends)."""

from __future__ import annotations

from pathlib import Path

from ops.facts import cuda, disk, gpu, memory, osinfo, python

FIXTURES = Path(__file__).parent.parent / "fixtures"
H100_QUERY = "0, NVIDIA H100 80GB HBM3, 580.159.04, 81559, 9.0, 00000000:00:06.0"
NVIDIA_SMI_HEADER = "CUDA Version: 13.0"
NVCC_13 = """nvcc: NVIDIA (R) Cuda compiler driver
Copyright (c) 2005-2025 NVIDIA Corporation
Built on Wed_Aug_20_01:58:59_PM_PDT_2025
Cuda compilation tools, release 13.0, V13.0.88
Build cuda_13.0.r13.0/compiler.36424714_0
"""
UBUNTU_2404 = '''PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION_CODENAME=noble
ID=ubuntu
@@uname
Linux 6.8.0-49-generic x86_64
'''


def test_captured_h100_line_is_in_the_fixture_file() -> None:
    captured = (FIXTURES / "nvidia-smi-h100.md").read_text()
    assert "NVIDIA H100 80GB HBM3, 580.159.04, 81559, 9.0" in captured
    assert "9.0, 00000000:00:06.0" in captured


def test_gpu_query_line() -> None:
    assert gpu.parse_csv_line(H100_QUERY) == {
        "index": 0, "name": "NVIDIA H100 80GB HBM3", "driver_version": "580.159.04",
        "memory_total_mib": 81559, "compute_capability": "9.0", "pci_bus_id": "00000000:00:06.0",
    }


def test_gpu_two_gpus_and_cuda_header() -> None:
    text = f"{H100_QUERY}\n{H100_QUERY.replace('0, ', '1, ', 1)}\n@@rc:0\n{NVIDIA_SMI_HEADER}\n"
    parsed = gpu.parse(text)
    assert parsed["present"] and [g["index"] for g in parsed["gpus"]] == [0, 1]
    assert parsed["driver"] == "580.159.04" and parsed["driver_cuda"] == "13.0"


def test_gpu_missing_and_failing() -> None:
    assert gpu.parse("@@missing\n")["present"] is False
    failed = gpu.parse("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n@@rc:9\n")
    assert failed["present"] is False and "couldn't communicate" in failed["error"]


def test_cuda_toolkits() -> None:
    parsed = cuda.parse(f"@@toolkit /usr/local/cuda-13.0\n{NVCC_13}@@path /usr/local/bin/nvcc\n{NVCC_13}")
    assert parsed["toolkits"] == [{"path": "/usr/local/cuda-13.0", "version": "13.0", "build": "13.0.88"}]
    assert parsed["nvcc_on_path"]["version"] == "13.0"
    assert cuda.parse("") == {"toolkits": [], "nvcc_on_path": None}


def test_os_release() -> None:
    parsed = osinfo.parse(UBUNTU_2404)
    assert parsed["distro"] == "ubuntu" and parsed["version"] == "24.04"
    assert parsed["kernel"] == "6.8.0-49-generic" and parsed["arch"] == "x86_64"


def test_memory_and_python() -> None:
    mem = memory.parse("16\nMemTotal:       131072000 kB\nMemAvailable:   120000000 kB\n")
    assert mem == {"cpus": 16, "total_bytes": 131072000 * 1024, "available_bytes": 120000000 * 1024}
    py = python.parse("python /usr/bin/python3 3.12.3\npython /usr/bin/python3.12 3.12.3\n"
                      "uv /usr/bin/uv 0.5.1\nvenv yes\n")
    assert [i["version"] for i in py["interpreters"]] == ["3.12.3", "3.12.3"]
    assert py["uv"] == {"path": "/usr/bin/uv", "version": "0.5.1"} and py["venv_module"]


def test_disk_with_what_model_root_holds() -> None:
    parsed = disk.parse("/opt/models/flashhead\n/dev/sda1 1000000000000 1 500000000000 50% /\n@@used 4096\n")
    assert parsed["free_bytes"] == 500000000000 and parsed["used_bytes"] == 4096 and parsed["mount"] == "/"
    assert disk.parse("/opt\n/dev/sda1 1000 1 500 50% /\n")["used_bytes"] == 0
