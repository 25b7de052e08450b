"""`flashhead provision HOST`: run the host playbook (check → diff → apply), print per-step status."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import SECONDS, App, host_options, open_host, pass_app
from ops.cli.fanout import Targets, fan_out
from ops.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLE = {"ok": "green", "changed": "yellow", "pending": "cyan", "failed": "red", "blocked": "red",
                "skipped": "dim"}


def hf_token_from_env() -> dict[str, str]:
    """The Hugging Face token travels by environment only: FLASHHEAD_HF_TOKEN, else HF_TOKEN."""
    token = os.environ.get("FLASHHEAD_HF_TOKEN") or os.environ.get("HF_TOKEN")
    return {"HF_TOKEN": token} if token else {}


@click.command()
@host_options
@click.option("--check", "check_only", is_flag=True,
              help="Run the checks only; change nothing. Exit 4 if changes are pending.")
@click.option("--diff", "show_diff", is_flag=True, help="Show what each step changes (or would change).")
@click.option("--step", "only", multiple=True, metavar="NAME", help="Run only this step (repeatable).")
@click.option("--skip", multiple=True, metavar="NAME", help="Leave this step out (repeatable).")
@click.option("--playbook", type=click.Path(dir_okay=False), default=None,
              help="Playbook YAML (default: the bundled playbooks/flashhead.yaml).")
@click.option("--source", metavar="DIR", default=None,
              help="Pre-staged checkpoints on the host (DIR/SoulX-FlashHead-1_3B, DIR/wav2vec2-base-960h).")
@click.option("--break-lock", is_flag=True, help="Remove a stale host lock left by a run that died.")
@click.option("--silence", type=SECONDS, default=60.0, show_default=True, metavar="SECONDS",
              help="After this long without output from the host, say what the step is still waiting on.")
@pass_app
def provision(app: App, host: str, connector: str | None, identity_file: str | None, accept_new_host_key: bool,
              var_overrides: tuple[str, ...],
              check_only: bool, show_diff: bool, only: tuple[str, ...], skip: tuple[str, ...],
              playbook: str | None, source: str | None, break_lock: bool, silence: float, forks: int,
              max_fail_percentage: float | None) -> None:
    """Provision HOST with the FlashHead playbook: CUDA 12.8, venv, torch, flash-attn, repo, checkpoints.

    The Hugging Face token is read from FLASHHEAD_HF_TOKEN or HF_TOKEN in your environment and sent to
    the host by environment only. While a step applies, its progress is shown: bytes of the checkpoint
    download, pip/apt/build phases, elapsed time (JSON lines on stderr with --output json).

    Exit codes: 0 done, 1 the host cannot run FlashHead (preflight; with --check every other step is
    still checked and listed), 4 changes pending (--check), 5 a command on the host failed, 8 the host
    is locked by another run.

    HOST may be a group or pattern (gpu, gpu-*, all, gpu-1,gpu-2): the hosts are provisioned in
    parallel (--forks at a time), each with its own lock and event log; the exit code is the worst
    host's (see the README's exit codes).
    """
    def one_host(app: App, target: Any) -> None:
        provision_host(app, target, connector, identity_file, accept_new_host_key, var_overrides, check_only,
                       show_diff, only, skip, playbook, source, break_lock, silence)

    fan_out(app, Targets(host, connector, var_overrides, playbook, forks, max_fail_percentage), "provision",
            one_host, describe_report)


def provision_host(app: App, host: Any, connector: str | None, identity_file: str | None, accept_new_host_key: bool,
                   var_overrides: tuple[str, ...], check_only: bool, show_diff: bool, only: tuple[str, ...],
                   skip: tuple[str, ...], playbook: str | None, source: str | None, break_lock: bool,
                   silence: float) -> None:
    """The play on one host: its report through app.output, its exit code in app.exit_code."""
    from ops.cli.live import RunView
    from ops.playbook.load import load_play
    from ops.playbook.runner import RunOptions, run_budget, run_play

    view = RunView(app.output)
    try:
        with open_host(app, host, connector, accept_new_host_key, var_overrides, playbook,
                       identity_file=identity_file) as conn:
            play = load_play(playbook, conn.host.vars)
            conn.expect_run(run_budget(play, only, skip, check_only))
            options = RunOptions(mode="check" if check_only else "apply", only=only, skip=skip,
                                 break_lock=break_lock, source=source, secrets=hf_token_from_env(), on_event=view,
                                 silence_s=silence)
            report = run_play(conn, play, options)
    finally:
        view.close()
    data = report.to_dict()
    data["diff"] = show_diff
    app.output.result(data, render_report)
    if report.error:
        from ops.errors import FlashheadError

        error = FlashheadError(report.error["message"], report.error.get("remedy"),
                               details=report.error.get("details") or {})
        if not app.output.json:
            app.output.error(error)
        app.exit_code = ExitCode(report.error["exit_code"])
    elif check_only and report.pending:
        app.exit_code = ExitCode.CHANGES_PENDING


def describe_report(data: dict) -> tuple[str, str]:
    """A host's row in the fleet summary: failed (and why), changed, pending or ok."""
    if data.get("error"):
        step = next((s["name"] for s in data["steps"] if s["status"] in ("failed", "blocked")), "")
        return "failed", f"{step}: {data['error']['message']}" if step else data["error"]["message"]
    if data["mode"] == "check":
        return ("pending", f"{len(data['pending'])} pending: {', '.join(data['pending'])}") if data["pending"] \
            else ("ok", "nothing to change")
    if data["changed"]:
        return "changed", f"{len(data['changed'])} changed: {', '.join(data['changed'])}"
    return "ok", "no changes"


def render_report(console: Console, data: dict) -> None:
    from rich.table import Table

    from ops.output import escape

    title = f"provision {data['host']} ({'check only' if data['mode'] == 'check' else 'apply'})"
    table = Table(title=title, title_justify="left")
    for column in ("step", "status", "time", "detail"):
        table.add_column(column, justify="right" if column == "time" else "left")
    for step in data["steps"]:
        style = STATUS_STYLE.get(step["status"], "")
        detail = escape(step["summary"])
        if data["diff"] and step["changes"]:
            detail += "".join(f"\n  [cyan]+ {escape(c)}[/]" for c in step["changes"])
        detail += "".join(f"\n  [yellow]! {escape(w)}[/]" for w in step["warnings"])
        table.add_row(step["name"], f"[{style}]{step['status']}[/]", f"{step['seconds']:.2f}s", detail)
    console.print(table)
    for note in data.get("notes") or []:
        console.print(f"[yellow]! {escape(note)}[/]")
    if data.get("resumed_from"):
        console.print(f"[dim]the previous run stopped at {escape(data['resumed_from'])}; this run resumed[/]")
    summary = (f"{len(data['changed'])} changed" if data["mode"] == "apply"
               else f"{len(data['pending'])} pending")
    if data.get("blocked"):
        summary = f"{len(data['blocked'])} blocked ({', '.join(data['blocked'])}), " + summary
    console.print(f"{summary}, {data['seconds']:.2f}s total")
