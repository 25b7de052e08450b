"""`flashhead deploy apply`: server-side apply, prune, a revision, and the rollout followed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, pass_app
from ops.cli.deploy.diff import draw_changes
from ops.cli.deploy.flags import apply_options, cluster_options, connect, render_from_flags, render_options
from ops.errors import FlashheadError
from ops.output import escape

if TYPE_CHECKING:
    from rich.console import Console


@click.command()
@render_options
@cluster_options
@click.option("--dry-run", "dry_run", type=click.Choice(["none", "client", "server"]), default="none",
              help="client: the plan only (new objects are not sent); server: every object is sent as a dry run "
                   "(validated and admitted, nothing stored).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the rollout until ready.")
@click.option("--timeout", default="30m", show_default=True, help="How long --wait waits (90s, 10m, 1h).")
@click.option("--atomic", is_flag=True, help="Roll back to the previous revision if the rollout fails.")
@click.option("--prune/--no-prune", default=True, show_default=True,
              help="Delete objects this tool created before that are no longer rendered.")
@click.option("--force-conflicts", is_flag=True, help="Take over fields another field manager owns.")
@click.option("--create-namespace", is_flag=True, help="Create the namespace if it does not exist.")
@pass_app
def apply(app: App, overlay: str, sets: tuple[str, ...], host: str | None, gpus_from_facts: bool,
          kubeconfig: str | None,
          context: str | None, namespace: str | None, dry_run: str, wait: bool, timeout: str, atomic: bool,
          prune: bool, force_conflicts: bool, create_namespace: bool) -> None:
    """Server-side apply (field manager `flashhead`), prune, record a revision, wait for the rollout."""
    from ops.deploy.apply import apply as apply_rendered

    rendered = render_from_flags(app, overlay, sets, host, namespace, gpus_from_facts)
    cluster = connect(kubeconfig, context, rendered.namespace)
    options = apply_options(app, wait, timeout, dry_run=dry_run, atomic=atomic, prune=prune,
                            force_conflicts=force_conflicts, create_namespace=create_namespace)
    with showing_what_was_done(app, cluster.namespace):
        result = apply_rendered(cluster, rendered, options)
    app.output.result(result, draw_apply)


@contextlib.contextmanager
def showing_what_was_done(app: App, namespace: str) -> Iterator[None]:
    """When an apply (or rollback) fails after its plan, print the plan and the revision first (text mode)."""
    try:
        yield
    except FlashheadError as error:
        if not app.output.json and "changes" in error.details:
            draw_failed(app.output.console, namespace, error.details)
            for key in ("changes", "sent"):
                error.details.pop(key, None)
        raise


def draw_failed(console: Console, namespace: str, details: dict[str, Any]) -> None:
    draw_changes(console, {"changes": details["changes"]})
    if details.get("revision") is not None:
        console.print(f"[red]✗[/] applied revision {details['revision']} to namespace {namespace}; "
                      "it did not roll out (below)")
    elif details.get("sent"):
        console.print(f"[red]✗[/] sent {escape(', '.join(details['sent']))}, then stopped (below); "
                      "no revision recorded")
    else:
        console.print("[red]✗[/] nothing was changed (below)")

def draw_apply(console: Console, result: Any) -> None:
    """The plan, then what became of it: a dry run, no change, or the revision applied."""
    draw_changes(console, {"changes": result.changes})
    if result.dry_run != "none":
        console.print(f"dry run ({result.dry_run}): nothing was changed")
    elif result.noop:
        console.print(f"no changes; revision {result.revision} stays current")
    else:
        console.print(f"[green]✓[/] applied revision {result.revision} to namespace {result.namespace}")
    if result.rollout:
        console.print(f"[green]✓[/] rollout complete: {result.rollout['progress']}")
        if result.rollout.get("history"):
            console.print(escape(result.rollout["history"]), style="dim")
