"""`flashhead deploy wait`: follow the rollout; on failure say why (exit 7)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, pass_app
from ops.cli.deploy.flags import cluster_options, connect, parse_duration, progress_printer
from ops.output import escape

if TYPE_CHECKING:
    from rich.console import Console


@click.command()
@cluster_options
@click.option("--timeout", default="30m", show_default=True, help="How long to wait (90s, 10m, 1h).")
@pass_app
def wait(app: App, kubeconfig: str | None, context: str | None, namespace: str | None, timeout: str) -> None:
    """Wait for the rollout; on failure say why (exit 7)."""
    from ops.deploy.wait import wait_for_rollout

    cluster = connect(kubeconfig, context, namespace)
    cluster.require_namespace()
    progress = wait_for_rollout(cluster, parse_duration(timeout), on_progress=progress_printer(app))
    app.output.result({"namespace": cluster.namespace, "complete": True, "progress": progress.summary(),
                       "history": progress.history_note}, draw_wait)


def draw_wait(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[green]✓[/] rollout complete: {data['progress']}")
    if data["history"]:
        console.print(escape(data["history"]), style="dim")
