"""Distribution (from /etc/os-release), kernel and architecture (from uname)."""

from __future__ import annotations

import shlex


def command(_vars: dict) -> str:
    return "cat /etc/os-release 2>/dev/null; echo @@uname; uname -s -r -m"


def parse(text: str) -> dict:
    release, _, uname = text.partition("@@uname")
    fields: dict[str, str] = {}
    for line in release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = " ".join(shlex.split(value)) if value else ""
    system, kernel, arch = (uname.split() + ["", "", ""])[:3]
    distro = fields.get("ID", "unknown")
    version = fields.get("VERSION_ID", "")
    return {
        "system": system,
        "distro": distro,
        "version": version,
        "pretty_name": fields.get("PRETTY_NAME", distro),
        "codename": fields.get("VERSION_CODENAME", ""),
        "kernel": kernel,
        "arch": arch,
    }
