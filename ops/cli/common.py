"""What every verb shares: the app state, the --output option, host resolution."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from ops.errors import ExitCode
from ops.output import Output

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """State shared by the verbs of one invocation."""

    inventory_path: str = "inventory.yaml"
    verbosity: int = 0
    output_mode: str = "text"
    exit_code: ExitCode = ExitCode.OK
    _output: Output | None = field(default=None, repr=False)

    @property
    def output(self) -> Output:
        if self._output is None or self._output.mode != self.output_mode:
            self._output = Output(self.output_mode, self.verbosity)
        return self._output


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.ensure_object(App).output_mode = value
    return value


def output_option(func: F) -> F:
    """`-o/--output text|json`, accepted globally and on every verb."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["text", "json"]),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_set_output,
        help="Output format: text for humans, json for agents.",
    )(func)


pass_app = click.make_pass_decorator(App, ensure=True)


def host_options(func: F) -> F:
    """Options shared by verbs that work on one host."""
    options = [
        click.argument("host"),
        click.option("--connector", type=click.Choice(["ssh", "local", "kubectl"]), default=None,
                     help="How to reach the host (default: the inventory's, else ssh)."),
        click.option("--accept-new-host-key", is_flag=True,
                     help="Trust a host key seen for the first time and record it in known_hosts."),
        click.option("--var", "var_overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override an inventory var (e.g. model_root=/data/flashhead)."),
        output_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def parse_key_values(pairs: tuple[str, ...], flag: str = "--var") -> dict[str, str]:
    from ops.errors import UsageError

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {pair!r}: expected KEY=VALUE")
        values[key] = value
    return values


def open_host(app: App, host: str, connector: str | None, accept_new_host_key: bool,
              var_overrides: tuple[str, ...]) -> Any:
    """Resolve HOST against the inventory and open its connector (not yet connected)."""
    from ops.connectors import connect
    from ops.inventory import resolve_host

    resolved = resolve_host(host, app.inventory_path, connector=connector,
                            overrides=parse_key_values(var_overrides) or None)
    options = {"accept_new_host_key": accept_new_host_key} if resolved.connector != "local" else {}
    return connect(resolved, **options)
