"""`flashhead deploy delete`: remove what this tool created in the namespace."""

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
@click.option("--keep-history", is_flag=True, help="Keep the revision history ConfigMap.")
@pass_app
def delete(app: App, kubeconfig: str | None, context: str | None, namespace: str | None,
           keep_history: bool) -> None:
    """Delete what this tool created in the namespace (the namespace and Secrets stay)."""
    from ops.deploy.delete import delete as delete_owned

    app.output.result(delete_owned(connect(kubeconfig, context, namespace), keep_history), draw_delete)


def draw_delete(console: Console, data: dict[str, Any]) -> None:
    console.print(f"deleted {len(data['deleted'])} objects from {data['namespace']}: "
                  f"{escape(', '.join(data['deleted'])) or 'none'}"
                  + ("; history removed" if data["history_deleted"] else ""))
