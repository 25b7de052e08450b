"""What every verb shares: the app state, the --output option, host resolution."""

from __future__ import annotations

import functools
import math
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
    inventory_named: bool = False  # given by --inventory/-i or FLASHHEAD_INVENTORY: it must exist
    inventory_checked: bool = False
    verbosity: int = 0
    output_mode: str = "text"
    exit_code: ExitCode = ExitCode.OK
    _output: Output | None = field(default=None, repr=False)

    @property
    def output(self) -> Output:
        if self._output is None or self._output.mode != self.output_mode:
            self._output = Output(self.output_mode, self.verbosity)
        return self._output


class Bounded(click.ParamType):
    """A number within [low, high], finite: out-of-range, nan and inf are usage errors naming the option."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float, what: str):
        self.kind, self.low, self.high, self.what = kind, low, high, what
        self.name = f"{kind.__name__} {what}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number: float
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = self.kind(value)
        else:
            try:
                number = self.kind(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not {'an integer' if self.kind is int else 'a number'}", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value} is out of range: {self.what}", param, ctx)
        return number


PORT = Bounded(int, 1, 65535, "a TCP port, 1-65535")
PORT_OR_ZERO = Bounded(int, 0, 65535, "a TCP port, 1-65535, or 0 for a free one")
COUNT = Bounded(int, 1, 100_000, "a count from 1 to 100000")
SECONDS = Bounded(float, 0, 7 * 86400, "seconds, from 0 to 604800 (a week)")
MILLISECONDS = Bounded(float, 0, 3_600_000, "milliseconds, from 0 to 3600000")
RATE = Bounded(float, 0, 1_000_000, "a rate from 0 to 1000000")


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


def pass_app(func: F) -> F:
    """Pass the App to a verb, after checking what every verb relies on: an inventory named with
    --inventory/-i or FLASHHEAD_INVENTORY exists and is valid (whether or not the verb reads it)."""
    @functools.wraps(func)
    def verb(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().ensure_object(App)
        if app.inventory_named and not app.inventory_checked:
            from ops.inventory import load_inventory

            load_inventory(app.inventory_path, required=True)
            app.inventory_checked = True
        return func(app, *args, **kwargs)
    return verb  # type: ignore[return-value]


def host_options(func: F) -> F:
    """Options shared by verbs that work on one host, or on a group or pattern of hosts (ops/cli/fanout.py)."""
    from ops.cli.fanout import fleet_options

    options = [
        click.argument("host"),
        click.option("--connector", type=click.Choice(["ssh", "local", "kubectl"]), default=None,
                     help="How to reach the host (default: the inventory's, else ssh)."),
        click.option("--identity-file", "-k", "identity_file", metavar="PATH", default=None,
                     help="SSH private key to offer (ssh's -i; here -i is --inventory). Overrides the "
                          "inventory's identity_file."),
        click.option("--accept-new-host-key", is_flag=True,
                     help="Trust a host key seen for the first time and record it in known_hosts "
                          "(FLASHHEAD_KNOWN_HOSTS, default ~/.ssh/known_hosts)."),
        click.option("--var", "var_overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override an inventory var (e.g. model_root=/data/flashhead)."),
        fleet_options,
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


def resolve(app: App, host: Any, *, connector: str | None = None, var_overrides: tuple[str, ...] = (),
            playbook: str | None = None) -> Any:
    """HOST resolved against the inventory, with --var overrides checked against the known vars (a Host,
    one of a group's, is already resolved)."""
    from ops.inventory import Host, resolve_host

    if isinstance(host, Host):
        return host
    return resolve_host(host, app.inventory_path, connector=connector, required=app.inventory_named,
                        overrides=parse_key_values(var_overrides) or None, playbook=playbook)


def open_host(app: App, host: Any, connector: str | None, accept_new_host_key: bool,
              var_overrides: tuple[str, ...], playbook: str | None = None, identity_file: str | None = None) -> Any:
    """Resolve HOST against the inventory and open its connector (not yet connected). A Host (one of
    a group's, already resolved with --connector and --var) is opened as it is."""
    from ops.connectors import connect

    resolved = resolve(app, host, connector=connector, var_overrides=var_overrides, playbook=playbook)
    if identity_file:
        resolved.identity_file = identity_file
    options = {"accept_new_host_key": accept_new_host_key} if resolved.connector != "local" else {}
    conn = connect(resolved, **options)
    conn.on_progress = app.output.progress_event
    return conn
