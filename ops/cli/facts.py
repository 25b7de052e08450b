"""`flashhead facts HOST`: read-only facts with derived verdicts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, host_options, open_host, pass_app
from ops.cli.fanout import Targets, fan_out

if TYPE_CHECKING:
    from rich.console import Console


@click.command()
@host_options
@pass_app
def facts(app: App, host: str, connector: str | None, identity_file: str | None, accept_new_host_key: bool,
          var_overrides: tuple[str, ...], forks: int, max_fail_percentage: float | None) -> None:
    """Print what HOST is: OS, CPU, RAM, free disk, Pythons, GPUs, CUDA toolkits, and the verdicts of the
    play's host requirements (the same judgement as doctor and preflight; --var changes the thresholds).
    HOST may be a group or pattern (gpu, gpu-*, all, gpu-1,gpu-2): the hosts are read in parallel."""
    def one_host(app: App, target: Any) -> None:
        from ops.facts import gather_facts
        from ops.playbook.load import play_vars

        with open_host(app, target, connector, accept_new_host_key, var_overrides,
                       identity_file=identity_file) as conn:
            app.output.result(gather_facts(conn, play_vars(conn.host.vars)), render_facts)

    fan_out(app, Targets(host, connector, var_overrides, None, forks, max_fail_percentage), "facts", one_host,
            describe_facts)


def describe_facts(data: dict) -> tuple[str, str]:
    gpus = data["gpu"]["gpus"]
    gpu = f"{len(gpus)}× {gpus[0]['name']}" if gpus else "no GPU"
    unmet = [v["name"] for v in data["verdicts"]["requirements"] if v["ok"] is False]
    return "ok", f"{data['os']['pretty_name']}, {gpu}" + (f"; not met: {', '.join(unmet)}" if unmet else "")


def _yes_no(value: bool | None) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]", None: "[yellow]unknown[/]"}[value]


def render_facts(console: Console, data: dict) -> None:
    from rich.table import Table

    from ops.output import escape

    table = Table(title=f"facts: {data['host']}", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    os_ = data["os"]
    table.add_row("os", f"{os_['pretty_name']} ({os_['arch']}), kernel {os_['kernel']}")
    mem = data["memory"]
    table.add_row("cpu / ram", f"{mem['cpus']} cores, {(mem['total_bytes'] or 0) / 2**30:.1f} GiB")
    disk = data["disk"]
    if "free_bytes" in disk:
        table.add_row("disk", f"{disk['free_bytes'] / 2**30:.1f} GiB free at {disk['path']} ({disk['mount']})")
    pythons = ", ".join(f"{p['version']} ({p['path']})" for p in data["python"]["interpreters"]) or "none"
    table.add_row("python", pythons)
    gpu = data["gpu"]
    if gpu["gpus"]:
        for g in gpu["gpus"]:
            table.add_row(f"gpu {g['index']}", f"{g['name']}, {g['memory_total_mib']} MiB, "
                          f"sm_{g['compute_capability'].replace('.', '')}, driver {g['driver_version']}")
    else:
        table.add_row("gpu", f"[red]none[/]: {gpu['error']}")
    toolkits = ", ".join(f"{t['version']} ({t['path']})" for t in data["cuda"]["toolkits"]) or "none"
    table.add_row("cuda toolkits", toolkits)
    for verdict in data["verdicts"]["requirements"]:
        table.add_row(verdict["name"], f"{_yes_no(verdict['ok'])}  [dim]{escape(verdict['detail'])}[/]")
    console.print(table)
