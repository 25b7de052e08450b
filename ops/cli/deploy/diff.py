"""`flashhead deploy diff`: what apply would change, object by object (exit 4 when anything would)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, pass_app
from ops.cli.deploy.flags import cluster_options, connect, render_from_flags, render_options
from ops.errors import ExitCode
from ops.output import escape

if TYPE_CHECKING:
    from rich.console import Console

COLOURS = {"create": "green", "update": "yellow", "prune": "red", "unchanged": "dim"}


@click.command()
@render_options
@cluster_options
@pass_app
def diff(app: App, overlay: str, sets: tuple[str, ...], host: str | None, gpus_from_facts: bool,
         kubeconfig: str | None,
         context: str | None, namespace: str | None) -> None:
    """Show what apply would change against the live objects (exit 4 when something would)."""
    from ops.deploy.diff import plan

    rendered = render_from_flags(app, overlay, sets, host, namespace, gpus_from_facts)
    cluster = connect(kubeconfig, context, rendered.namespace)
    cluster.require_namespace()
    changes = plan(cluster, rendered.objects)
    app.output.result({"namespace": cluster.namespace, "changes": changes}, draw_changes)
    if any(c.action != "unchanged" for c in changes):
        app.exit_code = ExitCode.CHANGES_PENDING


def draw_changes(console: Console, data: dict[str, Any]) -> None:
    """One line per object (create / update / unchanged / prune), the diff under each update."""
    for change in data["changes"]:
        console.print(f"[{COLOURS[change.action]}]{change.action:9}[/] {escape(change.key)}")
        if change.note:
            console.print(f"          {escape(change.note)}", style="dim")
        if change.diff and change.action == "update":
            console.print(escape(change.diff), style="dim", end="")
