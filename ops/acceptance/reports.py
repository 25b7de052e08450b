"""Write acceptance reports to files: JSON (the `--output json` document) and JUnit XML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops.acceptance.checks import AcceptanceReport
from ops.acceptance.junit import write_junit


def write_json(data: Any, path: Path) -> Path:
    """Write `data` as indented JSON, atomically (temp file + rename); only over a regular file."""
    from ops.output import to_jsonable, write_output_file

    return write_output_file(path, json.dumps(to_jsonable(data), indent=2) + "\n", option="--report")


def write_reports(reports: list[AcceptanceReport], junit: Path | None, json_path: Path | None) -> dict[str, str]:
    """Write the requested files; returns {"junit": path, "json": path} for what was written."""
    written: dict[str, str] = {}
    if junit is not None:
        written["junit"] = str(write_junit(reports, junit))
    if json_path is not None:
        data = reports[0].to_dict() if len(reports) == 1 else {r.suite: r.to_dict() for r in reports}
        written["json"] = str(write_json(data, json_path))
    return written
