"""`flashhead deploy`: one module per verb, Helm's shape.

Each module binds one verb's flags to its action in `ops.deploy` and draws the data the action
returns; `flags.py` holds what several verbs share. `kubernetes` is imported only inside the
actions that talk to a cluster, so `--help` stays fast.
"""

from __future__ import annotations

import click

from ops.cli.deploy.apply import apply
from ops.cli.deploy.delete import delete
from ops.cli.deploy.diff import diff
from ops.cli.deploy.history import history
from ops.cli.deploy.render import render
from ops.cli.deploy.rollback import rollback
from ops.cli.deploy.status import status
from ops.cli.deploy.wait import wait

VERBS: tuple[click.Command, ...] = (render, diff, apply, wait, status, history, rollback, delete)


@click.group()
def deploy() -> None:
    """Deploy the inference server on Kubernetes (manifests/ base + overlays)."""


for _verb in VERBS:
    deploy.add_command(_verb)
