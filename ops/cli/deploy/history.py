"""`flashhead deploy history`: the recorded revisions (the last 10)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, pass_app
from ops.cli.deploy.flags import cluster_options, connect
from ops.output import escape

if TYPE_CHECKING:
    from rich.console import Console


@click.command()
@cluster_options
@pass_app
def history(app: App, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """The recorded revisions (the last 10)."""
    from ops.deploy import history as revisions

    cluster = connect(kubeconfig, context, namespace)
    cluster.require_namespace()
    app.output.result({"namespace": cluster.namespace,
                       "revisions": [r.summary() for r in revisions.load(cluster)]}, draw_history)


def draw_history(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("revision", "deployed at", "status", "overlay", "description", "values")
    for r in data["revisions"]:
        values = ", ".join(f"{k}={v}" for k, v in r["values"].items())
        table.add_row(str(r["revision"]), r["deployed_at"], r["status"], r["overlay"], r["description"],
                      escape(values))
    console.print(table)
