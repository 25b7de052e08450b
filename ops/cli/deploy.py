"""`flashhead deploy`: render, diff, apply, wait, status, history, rollback, delete (kubectl-style).

Parses flags, calls ops.deploy actions, renders their data. `kubernetes` is imported only
inside the actions that talk to a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, output_option, parse_key_values, pass_app
from ops.errors import ExitCode, UsageError
from ops.output import escape

if TYPE_CHECKING:
    from rich.console import Console

    from ops.deploy.apply import ApplyOptions
    from ops.deploy.cluster import Cluster

F = Callable[..., Any]
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")


def cluster_options(func: F) -> F:
    """kubectl's connection flags."""
    for option in reversed([
        click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
                     help="Path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", default=None, help="Namespace (default: flashhead)."),
        output_option,
    ]):
        func = option(func)
    return func


def render_options(func: F) -> F:
    for option in reversed([
        click.option("--overlay", default="single-gpu-host", show_default=True,
                     help="manifests/overlays/NAME: single-gpu-host or image."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="A parameter (node, model_root, model_type, image, replicas, max_streams, ...)."),
        click.option("--host", "host", default=None, metavar="NAME",
                     help="Take node, model_root and model_type from this inventory host (--set wins)."),
    ]):
        func = option(func)
    return func


def parse_duration(raw: str) -> float:
    """`600`, `600s`, `10m`, `1h` → seconds."""
    match = DURATION.match(raw.strip())
    if not match:
        raise UsageError(f"--timeout {raw!r}: expected seconds or a duration like 90s, 10m, 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def render_from_flags(app: App, overlay: str, sets: tuple[str, ...], host: str | None,
                      namespace: str | None) -> Any:
    """Render with inventory values (--host) overlaid by --set values."""
    from ops.deploy.render import render

    values: dict[str, str] = {}
    if host:
        from ops.deploy.hostvalues import values_from_host

        values.update(values_from_host(app.inventory_path, host))
        if overlay != "single-gpu-host":
            values.pop("node", None)
    values.update(parse_key_values(sets, "--set"))
    return render(overlay, values, namespace)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    from ops.deploy.cluster import Cluster

    return Cluster.connect(kubeconfig, context, namespace)


@click.group()
def deploy() -> None:
    """Deploy the inference server on Kubernetes (manifests/ base + overlays)."""


@deploy.command()
@render_options
@click.option("-n", "--namespace", default=None, help="Namespace (default: the overlay's, flashhead).")
@output_option
@pass_app
def render(app: App, overlay: str, sets: tuple[str, ...], host: str | None, namespace: str | None) -> None:
    """Print the final YAML (or the objects as JSON) for an overlay and parameters."""
    rendered = render_from_flags(app, overlay, sets, host, namespace)
    if app.output.json:
        app.output.result({"overlay": rendered.overlay, "namespace": rendered.namespace,
                           "values": rendered.values, "objects": rendered.objects})
    else:
        click.echo(rendered.to_yaml(), nl=False)


@deploy.command()
@render_options
@cluster_options
@pass_app
def diff(app: App, overlay: str, sets: tuple[str, ...], host: str | None, kubeconfig: str | None,
         context: str | None, namespace: str | None) -> None:
    """Show what apply would change against the live objects (exit 4 when something would)."""
    from ops.deploy.diff import plan

    rendered = render_from_flags(app, overlay, sets, host, namespace)
    cluster = connect(kubeconfig, context, rendered.namespace)
    cluster.require_namespace()
    changes = plan(cluster, rendered.objects)
    app.output.result({"namespace": cluster.namespace, "changes": changes}, _draw_changes)
    if any(c.action != "unchanged" for c in changes):
        app.exit_code = ExitCode.CHANGES_PENDING


@deploy.command()
@render_options
@cluster_options
@click.option("--dry-run", "dry_run", type=click.Choice(["none", "client", "server"]), default="none",
              help="client: plan only; server: the API server validates and admits, nothing is stored.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the rollout until ready.")
@click.option("--timeout", default="30m", show_default=True, help="How long --wait waits (90s, 10m, 1h).")
@click.option("--atomic", is_flag=True, help="Roll back to the previous revision if the rollout fails.")
@click.option("--prune/--no-prune", default=True, show_default=True,
              help="Delete objects this tool created before that are no longer rendered.")
@click.option("--force-conflicts", is_flag=True, help="Take over fields another field manager owns.")
@click.option("--create-namespace", is_flag=True, help="Create the namespace if it does not exist.")
@pass_app
def apply(app: App, overlay: str, sets: tuple[str, ...], host: str | None, kubeconfig: str | None,
          context: str | None, namespace: str | None, dry_run: str, wait: bool, timeout: str, atomic: bool,
          prune: bool, force_conflicts: bool, create_namespace: bool) -> None:
    """Server-side apply (field manager `flashhead`), prune, record a revision, wait for the rollout."""
    from ops.deploy.apply import apply as apply_rendered

    rendered = render_from_flags(app, overlay, sets, host, namespace)
    cluster = connect(kubeconfig, context, rendered.namespace)
    options = _apply_options(app, wait, timeout, dry_run=dry_run, atomic=atomic, prune=prune,
                             force_conflicts=force_conflicts, create_namespace=create_namespace)
    result = apply_rendered(cluster, rendered, options)
    app.output.result(result, _draw_apply)


@deploy.command(name="wait")
@cluster_options
@click.option("--timeout", default="30m", show_default=True, help="How long to wait (90s, 10m, 1h).")
@pass_app
def wait_command(app: App, kubeconfig: str | None, context: str | None, namespace: str | None,
                 timeout: str) -> None:
    """Wait for the rollout; on failure say why (exit 7)."""
    from ops.deploy.wait import wait_for_rollout

    cluster = connect(kubeconfig, context, namespace)
    cluster.require_namespace()
    progress = wait_for_rollout(cluster, parse_duration(timeout), on_progress=_progress_printer(app))
    app.output.result({"namespace": cluster.namespace, "complete": True, "progress": progress.summary()},
                      lambda console, data: console.print(f"[green]✓[/] rollout complete: {data['progress']}"))


@deploy.command()
@cluster_options
@pass_app
def status(app: App, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Objects, pods, readiness, the endpoint and the server's /v1/info."""
    from ops.deploy.status import status as read_status

    app.output.result(read_status(connect(kubeconfig, context, namespace)), _draw_status)


@deploy.command(name="history")
@cluster_options
@pass_app
def history_command(app: App, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """The recorded revisions (the last 10)."""
    from ops.deploy import history

    cluster = connect(kubeconfig, context, namespace)
    cluster.require_namespace()
    app.output.result({"namespace": cluster.namespace,
                       "revisions": [r.summary() for r in history.load(cluster)]}, _draw_history)


@deploy.command()
@click.argument("revision", type=int, required=False)
@cluster_options
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the rollout until ready.")
@click.option("--timeout", default="30m", show_default=True, help="How long --wait waits.")
@click.option("--force-conflicts", is_flag=True, help="Take over fields another field manager owns.")
@pass_app
def rollback(app: App, revision: int | None, kubeconfig: str | None, context: str | None,
             namespace: str | None, wait: bool, timeout: str, force_conflicts: bool) -> None:
    """Re-apply REVISION (default: the previous good one) as a new revision."""
    from ops.deploy.rollback import rollback as roll_back

    cluster = connect(kubeconfig, context, namespace)
    result = roll_back(cluster, revision, _apply_options(app, wait, timeout, force_conflicts=force_conflicts))
    app.output.result(result, _draw_apply)


@deploy.command()
@cluster_options
@click.option("--keep-history", is_flag=True, help="Keep the revision history ConfigMap.")
@pass_app
def delete(app: App, kubeconfig: str | None, context: str | None, namespace: str | None,
           keep_history: bool) -> None:
    """Delete what this tool created in the namespace (the namespace and Secrets stay)."""
    from ops.deploy.delete import delete as delete_owned

    result = delete_owned(connect(kubeconfig, context, namespace), keep_history)
    app.output.result(result, lambda console, data: console.print(
        f"deleted {len(data['deleted'])} objects from {data['namespace']}: "
        f"{escape(', '.join(data['deleted'])) or 'none'}" + ("; history removed" if data["history_deleted"] else "")))


# ---- helpers and human renderings ----

def _apply_options(app: App, wait: bool, timeout: str, **kwargs: Any) -> ApplyOptions:
    from ops.deploy.apply import ApplyOptions

    return ApplyOptions(wait=wait, timeout=parse_duration(timeout), on_progress=_progress_printer(app), **kwargs)


def _progress_printer(app: App) -> Callable[[Any], None]:
    last: list[str] = []

    def show(progress: Any) -> None:
        line = progress.summary()
        reasons = "; ".join(f"{r.kind}: {r.message}" for r in progress.reasons[:2])
        text = f"{line}" + (f" — {reasons}" if reasons else "")
        if not last or last[-1] != text:
            last.append(text)
            app.output.progress(f"[dim]rollout:[/] {escape(text)}")
            app.output.event({"event": "rollout", "progress": line, "reasons": reasons})
    return show


def _draw_changes(console: Console, data: dict[str, Any]) -> None:
    colours = {"create": "green", "update": "yellow", "prune": "red", "unchanged": "dim"}
    for change in data["changes"]:
        console.print(f"[{colours[change.action]}]{change.action:9}[/] {escape(change.key)}")
        if change.diff and change.action == "update":
            console.print(escape(change.diff), style="dim", end="")


def _draw_apply(console: Console, result: Any) -> None:
    _draw_changes(console, {"changes": result.changes})
    if result.dry_run != "none":
        console.print(f"dry run ({result.dry_run}): nothing was changed")
    elif result.noop:
        console.print(f"no changes; revision {result.revision} stays current")
    else:
        console.print(f"[green]✓[/] applied revision {result.revision} to namespace {result.namespace}")
    if result.rollout:
        console.print(f"[green]✓[/] rollout complete: {result.rollout['progress']}")


def _draw_status(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    revision = data.get("revision")
    console.print(f"namespace {data['namespace']}, revision "
                  f"{revision['revision'] if revision else '-'} ({revision['status'] if revision else 'none'})")
    console.print("objects: " + escape(", ".join(data["objects"]) or "none"))
    if data.get("deployment"):
        mark = "[green]✓[/]" if data["deployment"]["complete"] else "[yellow]•[/]"
        console.print(f"{mark} Deployment: {data['deployment']['progress']}")
    table = Table("pod", "phase", "ready", "restarts", "node", "why not ready")
    for pod in data.get("pods", []):
        table.add_row(pod["name"], pod["phase"], "yes" if pod["ready"] else "no", str(pod["restarts"]),
                      pod["node"] or "-", escape("; ".join(pod["reasons"])))
    console.print(table)
    if data.get("endpoint"):
        console.print(f"endpoint: {data['endpoint']['in_cluster']} (outside: {data['endpoint']['port_forward']})")
    if data.get("readiness") is not None:
        console.print(f"server /readyz: {escape(str(data['readiness']))}")
    if data.get("info") is not None:
        console.print(f"server /v1/info: {escape(str(data['info']))}")
    else:
        console.print(f"server /v1/info: unavailable ({escape(str(data.get('info_error')))})")


def _draw_history(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("revision", "deployed at", "status", "overlay", "description", "values")
    for r in data["revisions"]:
        values = ", ".join(f"{k}={v}" for k, v in r["values"].items())
        table.add_row(str(r["revision"]), r["deployed_at"], r["status"], r["overlay"], r["description"],
                      escape(values))
    console.print(table)
