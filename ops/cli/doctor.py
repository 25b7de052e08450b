"""`flashhead doctor HOST`: one line per check, ✓ or ✗ with the remedy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, host_options, open_host, pass_app
from ops.cli.fanout import Targets, fan_out
from ops.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from ops.doctor import Diagnosis


@click.command()
@host_options
@pass_app
def doctor(app: App, host: str, connector: str | None, identity_file: str | None, accept_new_host_key: bool,
           var_overrides: tuple[str, ...], forks: int, max_fail_percentage: float | None) -> None:
    """Diagnose access to HOST and whether it can run FlashHead; print the fix for each failure.

    HOST may be a group or pattern (gpu, gpu-*, all, gpu-1,gpu-2): the hosts are diagnosed in parallel.
    Exit code 0 when every check passes, 1 when a host check fails, 3 when the host cannot be
    reached or refuses authentication (the public key to authorize and the command are printed).
    """
    def one_host(app: App, target: Any) -> None:
        from ops.doctor import diagnose

        with open_host(app, target, connector, accept_new_host_key, var_overrides,
                       identity_file=identity_file) as conn:
            report = diagnose(conn)
        app.output.result({"ok": report.ok, **_as_dict(report)}, render_diagnosis)
        app.exit_code = ExitCode(report.exit_code)

    fan_out(app, Targets(host, connector, var_overrides, None, forks, max_fail_percentage), "doctor", one_host,
            describe_diagnosis)


def _as_dict(report: Diagnosis) -> dict:
    from ops.output import to_jsonable

    return dict(to_jsonable(report))


def describe_diagnosis(data: dict) -> tuple[str, str]:
    failed = [check["name"] for check in data["checks"] if check["ok"] is False]
    return ("ok", "all checks passed") if not failed else ("failed", f"failed: {', '.join(failed)}")


def render_diagnosis(console: Console, data: dict) -> None:
    from ops.output import check_line

    console.print(f"[bold]doctor[/] {data['host']} ({data['target']})")
    for check in data["checks"]:
        console.print(check_line(check["ok"], check["name"], check["detail"], check["remedy"]), soft_wrap=True)
    verdict = "[green]all checks passed[/]" if data["ok"] else "[red]some checks failed[/]"
    console.print(verdict)
