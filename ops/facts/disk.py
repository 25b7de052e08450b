"""Free disk where the model will live (the nearest existing parent of model_root)."""

from __future__ import annotations

from ops.connectors.base import quote


def command(vars: dict) -> str:
    root = quote(vars.get("model_root", "/opt/models/flashhead"))
    return (f'p={root}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            'echo "$p"; df -P -B1 "$p" | tail -n 1')


def parse(text: str) -> dict:
    lines = text.strip().splitlines()
    if len(lines) < 2:
        return {"path": lines[0] if lines else None, "error": "df printed nothing"}
    fields = lines[-1].split()
    # Filesystem 1B-blocks Used Available Capacity Mounted-on
    return {
        "path": lines[0],
        "filesystem": fields[0],
        "total_bytes": int(fields[1]),
        "free_bytes": int(fields[3]),
        "mount": fields[5] if len(fields) > 5 else None,
    }
