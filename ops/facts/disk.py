"""Free disk where the model will live (the nearest existing parent of model_root), and what
model_root already holds (it counts towards what the play needs)."""

from __future__ import annotations

import shlex


def command(vars: dict) -> str:
    root = shlex.quote(str(vars.get("model_root", "/opt/models/flashhead")))
    return (f'p={root}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            'echo "$p"; df -P -B1 "$p" | tail -n 1; '
            f'[ -d {root} ] && echo "@@used $(du -sxb {root} 2>/dev/null | cut -f1)"; true')


def parse(text: str) -> dict:
    lines = [line for line in text.strip().splitlines() if not line.startswith("@@used")]
    used = next((line.split()[1] for line in text.splitlines() if line.startswith("@@used ") and
                 len(line.split()) > 1 and line.split()[1].isdigit()), "0")
    if len(lines) < 2:
        return {"path": lines[0] if lines else None, "error": "df printed nothing", "used_bytes": int(used)}
    fields = lines[-1].split()
    # Filesystem 1B-blocks Used Available Capacity Mounted-on
    return {
        "path": lines[0],
        "filesystem": fields[0],
        "total_bytes": int(fields[1]),
        "free_bytes": int(fields[3]),
        "mount": fields[5] if len(fields) > 5 else None,
        "used_bytes": int(used),  # what model_root already holds
    }
