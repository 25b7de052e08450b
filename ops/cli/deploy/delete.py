"""`flashhead deploy delete`: remove what this tool created in the namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, pass_app
from ops.cli.deploy.flags import cluster_options, connect, parse_duration
from ops.output import escape

if TYPE_CHECKING:
    from rich.console import Console


@click.command()
@cluster_options
@click.option("--keep-history", is_flag=True, help="Keep the revision history ConfigMap.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Return when everything deleted is gone (the Deployment waits for its pods to terminate).")
@click.option("--timeout", default="5m", show_default=True, help="How long --wait waits (90s, 10m, 1h).")
@pass_app
def delete(app: App, kubeconfig: str | None, context: str | None, namespace: str | None,
           keep_history: bool, wait: bool, timeout: str) -> None:
    """Delete what this tool created in the namespace (the namespace and Secrets stay)."""
    from ops.deploy.delete import DeleteOptions
    from ops.deploy.delete import delete as delete_owned

    options = DeleteOptions(keep_history=keep_history, wait=wait, timeout=parse_duration(timeout),
                            on_waiting=lambda text: app.output.progress(f"[dim]{escape(text)}[/]"))
    app.output.result(delete_owned(connect(kubeconfig, context, namespace), options), draw_delete)


def draw_delete(console: Console, data: dict[str, Any]) -> None:
    console.print(f"deleted {len(data['deleted'])} objects from {data['namespace']}: "
                  f"{escape(', '.join(data['deleted'])) or 'none'}"
                  + ("; history removed" if data["history_deleted"] else ""))
    if not data["gone"]:
        console.print("not waited for: objects deleted in the foreground stay until their pods have terminated "
                      "(an apply now waits for them)")
