"""`--connector local` (HOST @local) runs the play on this machine; hostile paths stay data."""

from __future__ import annotations

import os

from tests.conftest import STANDIN_BIN
from tests.provision.helpers import report, statuses


def test_local_play_with_a_hostile_model_root(shared_dir, cli):
    canary = shared_dir / "pwned"
    base = shared_dir / "local host"
    root = base / f"it's a \"root\" $(touch {canary}); `touch {canary}`"
    env = {"PATH": f"{STANDIN_BIN}:{os.environ['PATH']}"}
    common = ["provision", "@local", "--var", f"model_root={root}",
              "--var", "python=/usr/bin/python3", "--var", "use_uv=never", "--var", 'disk_gib={"venv": 0.1}',
              "--output", "json"]
    check = cli(*common, "--check", env=env, cwd=shared_dir)
    assert check.returncode == 4, check.stdout + check.stderr
    assert statuses(report(check))["preflight"] == "pending" and not root.exists()
    applied = cli(*common, "--step", "preflight", "--step", "venv", env=env, cwd=shared_dir)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (root / ".venv" / "bin" / "python").exists() and (root / ".flashhead" / "events.jsonl").exists()
    again = cli(*common, "--step", "preflight", "--step", "venv", env=env, cwd=shared_dir)
    assert again.returncode == 0 and report(again)["changed"] == []
    assert not canary.exists()
