"""`flashhead deploy wait`: follow the rollout; on failure say why (exit 7)."""

from __future__ import annotations

import click

from ops.cli.common import App, pass_app
from ops.cli.deploy.flags import cluster_options, connect, parse_duration, progress_printer


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
    app.output.result({"namespace": cluster.namespace, "complete": True, "progress": progress.summary()},
                      lambda console, data: console.print(f"[green]✓[/] rollout complete: {data['progress']}"))
