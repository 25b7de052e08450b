"""This project's wheel for the host, from a checkout (`pip wheel`) or from the installed distribution.

A checkout builds its wheel with pip. An installed wheel (`pip install flashhead-ops`) has no
sources to build from: its files, as its RECORD lists them, are packed back into the same wheel.
Either way the fingerprint names the content the host gets, so a check can tell it is current.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "flashhead-ops"
_LEFT_OUT = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}  # written by the installer, not the wheel


def is_checkout(root: Path) -> bool:
    """True when `root` holds this project's sources (pyproject.toml next to the packages)."""
    return (root / "pyproject.toml").is_file() and (root / "inference").is_dir()


def _installed_files() -> list[tuple[str, Path]]:
    """(path in the wheel, file on disk) of the installed distribution, tool-written files left out."""
    dist = metadata.distribution(DISTRIBUTION)
    files = []
    for entry in dist.files or []:
        name = str(entry)
        if name.startswith("..") or "__pycache__" in entry.parts or entry.name in _LEFT_OUT:
            continue
        files.append((name, Path(str(entry.locate()))))
    return sorted(files)


def installed_fingerprint() -> str:
    """sha256 over the installed distribution's `inference` package and its metadata."""
    digest = hashlib.sha256()
    for name, path in _installed_files():
        if name.startswith("inference/") or name.endswith(".dist-info/METADATA"):
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def repack_installed(out: Path) -> Path:
    """Write the installed distribution back into a wheel in `out` (same files, a fresh RECORD)."""
    dist = metadata.distribution(DISTRIBUTION)
    version = dist.version
    info = f"flashhead_ops-{version}.dist-info"
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"flashhead_ops-{version}-py3-none-any.whl"
    temp = wheel.with_suffix(".partial")
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in _installed_files():
            data = path.read_bytes()
            archive.writestr(name, data)
            hashed = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([name, f"sha256={hashed}", len(data)])
        writer.writerow([f"{info}/RECORD", "", ""])
        archive.writestr(f"{info}/RECORD", record.getvalue())
    temp.replace(wheel)
    return wheel
