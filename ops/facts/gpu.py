"""NVIDIA GPUs from `nvidia-smi --query-gpu ... --format=csv,noheader,nounits`."""

from __future__ import annotations

QUERY = "index,name,driver_version,memory.total,compute_cap,pci.bus_id"


def command(_vars: dict) -> str:
    return (f"command -v nvidia-smi >/dev/null || {{ echo '@@missing'; exit 0; }}; "
            f"nvidia-smi --query-gpu={QUERY} --format=csv,noheader,nounits 2>&1; echo \"@@rc:$?\"; "
            "nvidia-smi 2>/dev/null | grep -o 'CUDA Version: *[0-9.]*' | head -n 1")


def parse(text: str) -> dict:
    if "@@missing" in text:
        return {"present": False, "gpus": [], "driver": None, "driver_cuda": None,
                "error": "nvidia-smi not found: no NVIDIA driver installed (or no NVIDIA GPU)"}
    table, _, tail = text.partition("@@rc:")
    status, _, header = tail.partition("\n")
    if status.strip() != "0":
        return {"present": False, "gpus": [], "driver": None, "driver_cuda": None,
                "error": f"nvidia-smi failed: {table.strip()[:300]}"}
    gpus = [gpu for gpu in (parse_csv_line(line) for line in table.splitlines()) if gpu]
    driver_cuda = header.split(":")[-1].strip() or None if "CUDA Version" in header else None
    return {"present": bool(gpus), "gpus": gpus, "driver": gpus[0]["driver_version"] if gpus else None,
            "driver_cuda": driver_cuda, "error": None if gpus else "nvidia-smi lists no GPU"}


def parse_csv_line(line: str) -> dict | None:
    """One line of the query: `0, NVIDIA H100 80GB HBM3, 580.159.04, 81559, 9.0, 00000000:00:06.0`."""
    fields = [field.strip() for field in line.split(",")]
    if len(fields) < 6 or not fields[0].isdigit():
        return None
    index, name, driver, memory, capability, bus_id = fields[:6]
    return {
        "index": int(index),
        "name": name,
        "driver_version": driver,
        "memory_total_mib": int(memory) if memory.isdigit() else None,
        "compute_capability": capability,
        "pci_bus_id": bus_id,
    }
