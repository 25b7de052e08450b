"""`flashhead doctor HOST`: one line per check, ✓ or ✗ with the remedy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ops.cli.common import App, host_options, open_host, pass_app
from ops.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from ops.doctor import Diagnosis


@click.command()
@host_options
@pass_app
def doctor(app: App, host: str, connector: str | None, identity_file: str | None, accept_new_host_key: bool,
           var_overrides: tuple[str, ...]) -> None:
    """Diagnose access to HOST and whether it can run FlashHead; print the fix for each failure.

    Exit code 0 when every check passes, 1 when a host check fails, 3 when the host cannot be
    reached or refuses authentication (the public key to authorize and the command are printed).
    """
    from ops.doctor import diagnose

    with open_host(app, host, connector, accept_new_host_key, var_overrides,
                   identity_file=identity_file) as conn:
        report = diagnose(conn)
    app.output.result({"ok": report.ok, **_as_dict(report)}, render_diagnosis)
    app.exit_code = ExitCode(report.exit_code)


def _as_dict(report: Diagnosis) -> dict:
    from ops.output import to_jsonable

    return dict(to_jsonable(report))


def render_diagnosis(console: Console, data: dict) -> None:
    from ops.output import check_line

    console.print(f"[bold]doctor[/] {data['host']} ({data['target']})")
    for check in data["checks"]:
        console.print(check_line(check["ok"], check["name"], check["detail"], check["remedy"]), soft_wrap=True)
    verdict = "[green]all checks passed[/]" if data["ok"] else "[red]some checks failed[/]"
    console.print(verdict)
