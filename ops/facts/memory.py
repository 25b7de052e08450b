"""CPU count and memory (from nproc and /proc/meminfo)."""

from __future__ import annotations


def command(_vars: dict) -> str:
    return "nproc; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo"


def parse(text: str) -> dict:
    lines = text.split()
    cpus = int(lines[0]) if lines and lines[0].isdigit() else None
    values = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        number = rest.split()[0] if rest.split() else "0"
        values[key] = int(number) * 1024  # /proc/meminfo counts kB
    return {"cpus": cpus, "total_bytes": values.get("MemTotal"), "available_bytes": values.get("MemAvailable")}
