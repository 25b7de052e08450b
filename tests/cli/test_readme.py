"""The README's set-up block is complete on a fresh Debian, and a machine without the suite's needs
gets one message at the start, not thirty cryptic failures."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests import system_needs
from tests.conftest import REPO


def setup_block() -> str:
    section = (REPO / "README.md").read_text().split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.DOTALL)[0]


def test_the_set_up_block_installs_every_system_need_and_the_project() -> None:
    block = setup_block()
    apt = next(line for line in block.splitlines() if "apt-get install" in line)
    assert set(system_needs.PACKAGES) | {"python3-venv"} <= set(apt.split("apt-get install -y", 1)[1].split())
    install = "python3 -m venv .venv && .venv/bin/pip install -c constraints/dev.txt -e '.[server,dev,livekit,pipecat]'"
    assert install in block


def test_ci_installs_what_the_list_says_is_missing() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "needs=$(python3 tests/system_needs.py)" in ci
    assert "apt-get install -y -qq --no-install-recommends $needs" in ci


def test_a_machine_without_the_needs_stops_at_the_start_with_one_message(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_inventory.py"],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 4
    text = done.stdout + done.stderr
    assert "the test suite needs ssh-keygen (openssh-client)" in text and "kubectl (kubernetes-client)" in text
    assert system_needs.APT_LINE in text and "passed" not in text and "failed" not in text
    packages = subprocess.run([sys.executable, "tests/system_needs.py"], capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, "PATH": str(tmp_path)}).stdout.split()
    assert "kubernetes-client" in packages and "openssh-client" in packages


def test_the_avatar_examples_compile_are_short_and_name_real_adapters() -> None:
    section = (REPO / "README.md").read_text().split("## Avatars in LiveKit and Pipecat agents", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2
    assert len(blocks[0].splitlines()) <= 20  # the LiveKit agent: the 20 lines the README promises
    for block in blocks:
        compile(block, "README.md", "exec")
        assert len(block.splitlines()) <= 30
        for module, name in re.findall(r"from (inference\.integrations\.\w+) import (\w+)", block):
            source = (REPO / (module.replace(".", "/") + ".py")).read_text()
            assert re.search(rf"^class {name}[(:]", source, re.MULTILINE)
