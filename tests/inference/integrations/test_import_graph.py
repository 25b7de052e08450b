"""The operator's base install never imports the adapters or their stacks."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_the_cli_the_client_and_the_server_do_not_import_livekit_or_pipecat() -> None:
    code = ("import sys, ops.cli.main, inference.client, inference.app, inference.api.stream; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'livekit', 'pipecat'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
