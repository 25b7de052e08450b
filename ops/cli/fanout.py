"""A verb on one host or many: a HOST argument that is a group or pattern runs the verb's one-host
body on each host in parallel (ops/fleet.py), each with its own buffered output (ops/cli/fleetview.py).

A host name, `user@address[:port]` or `@local` runs the body once, exactly as before: the same
output, the same JSON document, the same exit code. A group, `all`, a glob or a comma list gets the
fleet output: a progress line per host (terminal only), each host's output in one piece when it is
done, a summary table; with `--output json`, one JSON line per host:

    {"host": "gpu-1", "target": "ubuntu@10.0.0.11", "status": "changed", "exit_code": 0,
     "seconds": 41.2, "result": <the document the verb prints for one host, or its error>}

Hosts not started because of `--max-fail-percentage` get a line with `"status": "skipped"`,
`"exit_code": null` and `"result": null`. The exit code is the worst host's (ops/fleet.py SEVERITY).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ops.cli.common import App, Bounded, parse_key_values
from ops.errors import ExitCode, FlashheadError
from ops.fleet import DEFAULT_FORKS

if TYPE_CHECKING:
    from ops.cli.fleetview import FleetBoard
    from ops.fleet import HostOutcome
    from ops.inventory import Host

F = TypeVar("F", bound=Callable[..., Any])
FORKS = Bounded(int, 1, 1000, "a number of hosts at once, 1-1000")
PERCENT = Bounded(float, 0, 100, "a percentage, 0-100")
OneHost = Callable[[App, "Host | str"], None]
Describe = Callable[[dict[str, Any]], tuple[str, str]]


def fleet_options(func: F) -> F:
    """`--forks` and `--max-fail-percentage`, for verbs whose HOST may be a group or pattern."""
    options = [
        click.option("--forks", "-f", type=FORKS, default=DEFAULT_FORKS, show_default=True, metavar="N",
                     help="With a group or pattern: how many hosts run at once."),
        click.option("--max-fail-percentage", type=PERCENT, default=None, metavar="PERCENT",
                     help="With a group or pattern: start no further host once more than PERCENT of the hosts "
                          "have failed (as Ansible's max_fail_percentage); those not started are reported as "
                          "skipped. Default: every host runs."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass
class Targets:
    """What the HOST argument and the host options of one invocation say."""

    spec: str
    connector: str | None = None
    var_overrides: tuple[str, ...] = ()
    playbook: str | None = None
    forks: int = DEFAULT_FORKS
    max_fail_percentage: float | None = None


def fan_out(app: App, targets: Targets, verb: str, one_host: OneHost, describe: Describe) -> None:
    """Run `one_host(app, host)` for HOST, or for each host of a group/pattern in parallel.

    `describe(document)` gives a finished host's status word (ok, changed, pending, failed) and the
    detail for the summary table, from the document the verb printed for it."""
    hosts = pattern_hosts(app, targets)
    if hosts is None:
        one_host(app, targets.spec)
        return
    from ops.cli.fleetview import FleetBoard, render_summary
    from ops.fleet import run_on_hosts, worst_exit_code

    board = FleetBoard(app.output, hosts)
    rows: dict[str, tuple[str, str]] = {}
    try:
        outcomes = run_on_hosts(hosts, lambda host: _run_host(app, host, board, one_host, describe, rows),
                                forks=targets.forks, max_fail_percentage=targets.max_fail_percentage,
                                on_start=board.started)
    finally:
        board.close()
    for outcome in outcomes:
        if outcome.skipped:
            rows[outcome.host.name] = ("skipped", "not started: --max-fail-percentage was exceeded")
            if app.output.json:
                board.json_line(_json_line(outcome, "skipped", None))
    if not app.output.json:
        render_summary(app.output.console, outcomes, rows, verb)
    app.exit_code = worst_exit_code(outcome.exit_code for outcome in outcomes)


def pattern_hosts(app: App, targets: Targets) -> list[Host] | None:
    """The hosts of a group or pattern, or None when HOST names one host."""
    from ops.hostpatterns import is_host_pattern
    from ops.inventory import apply_command_line, known_vars, load_inventory

    known = known_vars(targets.playbook)
    inventory = load_inventory(app.inventory_path, required=app.inventory_named, known=known)
    if not is_host_pattern(targets.spec, inventory):
        return None
    from ops.hostpatterns import select_hosts

    overrides = parse_key_values(targets.var_overrides) or None
    return [apply_command_line(host, targets.connector, overrides, known)
            for host in select_hosts(targets.spec, inventory)]


def _run_host(app: App, host: Host, board: FleetBoard, one_host: OneHost, describe: Describe,
              rows: dict[str, tuple[str, str]]) -> ExitCode:
    """One host of a fleet run, in its own thread: every error becomes this host's output and code."""
    import time

    from ops.cli.fleetview import HostOutput

    output = HostOutput(app.output, host, board)
    host_app = App(inventory_path=app.inventory_path, inventory_named=app.inventory_named, inventory_checked=True,
                   verbosity=app.verbosity, output_mode=app.output_mode, _output=output)
    started = time.monotonic()
    try:
        one_host(host_app, host)
        code = host_app.exit_code
    except FlashheadError as error:
        output.error(error)
        code = error.exit_code
    except Exception:  # noqa: BLE001 - a bug on one host must not take the others' output with it
        from ops.cli.main import write_traceback

        path = write_traceback()
        output.error(FlashheadError(f"internal error on this host: the traceback is in {path}",
                                    "please attach it to a bug report"))
        code = ExitCode.INTERNAL
    status, detail = _status(code, output.document, describe)
    rows[host.name] = (status, detail)
    line = {"host": host.name, "target": host.target, "status": status, "exit_code": int(code),
            "seconds": round(time.monotonic() - started, 3), "result": output.document}
    board.finished(host, status, int(code), output, line)
    return code


def _status(code: ExitCode, document: Any, describe: Describe) -> tuple[str, str]:
    """A finished host's status word and detail, from its exit code and the document it printed."""
    from ops.fleet import NOT_FAILED

    status, detail = "ok", ""
    if isinstance(document, dict) and isinstance(document.get("error"), str):  # an error, not a result
        detail = str(document.get("message") or "")
    elif isinstance(document, dict):
        status, detail = describe(document)
    if code == ExitCode.CONNECTION:
        return "unreachable", detail
    return ("failed" if code not in NOT_FAILED else status), detail


def _json_line(outcome: HostOutcome, status: str, document: Any) -> dict[str, Any]:
    return {"host": outcome.host.name, "target": outcome.host.target, "status": status,
            "exit_code": None if outcome.exit_code is None else int(outcome.exit_code),
            "seconds": round(outcome.seconds, 3), "result": document}
