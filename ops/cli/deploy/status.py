"""`flashhead deploy status`: objects, pods, readiness, the endpoint and the server's /v1/info."""

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
def status(app: App, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Objects, pods, readiness, the endpoint and the server's /v1/info."""
    from ops.deploy.status import status as read_status

    app.output.result(read_status(connect(kubeconfig, context, namespace)), draw_status)


def draw_status(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    revision = data.get("revision")
    console.print(f"namespace {data['namespace']}, revision "
                  f"{revision['revision'] if revision else '-'} ({revision['status'] if revision else 'none'})")
    if data.get("history_note"):
        console.print(escape(data["history_note"]), style="dim")
    console.print("objects: " + escape(", ".join(data["objects"]) or "none"))
    if data.get("deployment"):
        mark = "[green]✓[/]" if data["deployment"]["complete"] else "[yellow]•[/]"
        console.print(f"{mark} Deployment: {data['deployment']['progress']}")
        for reason in data["deployment"]["reasons"]:
            console.print(f"  [yellow]{escape(reason['kind'])}[/]: {escape(reason['message'])}", soft_wrap=True)
    table = Table("pod", "revision", "phase", "ready", "restarts", "node", "why not ready")
    for pod in data.get("pods", []):
        revision = str(pod["revision"] or "-") + ("" if pod["current"] else " (old)")
        table.add_row(pod["name"], revision, pod["phase"], "yes" if pod["ready"] else "no", str(pod["restarts"]),
                      pod["node"] or "-", escape("; ".join(pod["reasons"])))
    console.print(table)
    for rs in data.get("old_replicasets", []):
        console.print(f"old ReplicaSet {rs['name']} (revision {rs['revision']}) still holds {rs['replicas']} "
                      f"replica(s), pods: {escape(', '.join(rs['pods']) or 'none')}")
    if data.get("endpoint"):
        console.print(f"endpoint: {data['endpoint']['in_cluster']} (outside: {data['endpoint']['port_forward']})")
    if data.get("readiness") is not None:
        console.print(f"server /readyz: {escape(str(data['readiness']))}")
    if data.get("info") is not None:
        console.print(f"server /v1/info: {escape(str(data['info']))}")
    else:
        console.print(f"server /v1/info: unavailable ({escape(str(data.get('info_error')))})")
