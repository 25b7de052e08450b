"""What the test suite needs from the machine: programs (with their Debian packages) and root.

The one list: tests/conftest.py stops the run at the start when something is missing, .ci/run
installs what is missing (`python3 tests/system_needs.py` prints those packages), and the README's
set-up block installs all of them (tests/cli/test_readme.py holds it to this list). Stdlib only.
"""

from __future__ import annotations

import os
import shutil
import sys

SYSTEM_NEEDS = {"sshd": "openssh-server", "ssh-keygen": "openssh-client", "sudo": "sudo", "ip": "iproute2",
                "git": "git", "ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "kubectl": "kubernetes-client",
                "nsenter": "util-linux", "unshare": "util-linux", "mount": "mount", "ps": "procps",
                "useradd": "passwd", "chromium": "chromium", "chromedriver": "chromium-driver"}
PACKAGES = sorted(set(SYSTEM_NEEDS.values()))
APT_LINE = "apt-get install -y " + " ".join(PACKAGES)


def missing_programs(path: str | None = None) -> list[str]:
    """The programs of SYSTEM_NEEDS not on `path` (default $PATH) nor in the sbin folders."""
    search = f"{os.environ.get('PATH', '') if path is None else path}:/usr/local/sbin:/usr/sbin:/sbin"
    return [program for program in SYSTEM_NEEDS if shutil.which(program, path=search) is None]


def missing(path: str | None = None) -> list[str]:
    """What the suite needs that this machine lacks, for a message: `program (package)`, and root."""
    lacking = [f"{program} ({SYSTEM_NEEDS[program]})" for program in missing_programs(path)]
    if os.geteuid() != 0:
        lacking.append("root (the suite adds a login user, network namespaces and mounts)")
    return lacking


if __name__ == "__main__":
    sys.stdout.write(" ".join(sorted({SYSTEM_NEEDS[p] for p in missing_programs()})) + "\n")
