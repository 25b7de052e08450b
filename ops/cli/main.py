"""Entry point and verb registry. Verbs are imported only when invoked, so `--help` stays fast."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import tempfile
import traceback

import click

from ops.cli.common import App, output_option
from ops.errors import ExitCode, FlashheadError, UsageError

# name -> (module:attribute, one-line help). The one list of all verbs.
VERBS: dict[str, tuple[str, str]] = {
    "doctor": ("ops.cli.doctor:doctor", "Diagnose access to a host: connect, auth, sudo, disk, GPU, driver."),
    "facts": ("ops.cli.facts:facts", "Read-only facts about a host: OS, CPU, RAM, disk, GPUs, CUDA, verdicts."),
    "provision": ("ops.cli.provision:provision", "Run the FlashHead host playbook (check, diff, apply)."),
    "export-script": ("ops.cli.export_script:export_script", "Write the playbook as one bash script."),
    "deploy": ("ops.cli.deploy:deploy", "Render, diff, apply, wait, status, rollback, delete on Kubernetes."),
    "serve": ("ops.cli.serve:serve", "Run the inference server locally."),
    "accept": ("ops.cli.accept:accept", "Acceptance tests against a running server: smoke, fps."),
    "demo": ("ops.cli.demo:demo", "The whole loop on this machine: serve, accept, write demo.mp4."),
}


class LazyGroup(click.Group):
    """A click group that imports a verb's module only when that verb runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS:
            return None
        if ctx.resilient_parsing or "--help" in sys.argv[1:2]:
            return click.Command(cmd_name, help=VERBS[cmd_name][1], short_help=VERBS[cmd_name][1])
        module_name, attribute = VERBS[cmd_name][0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in VERBS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--inventory",
    "-i",
    "inventory",
    envvar="FLASHHEAD_INVENTORY",
    default="inventory.yaml",
    show_default=True,
    help="Inventory YAML (hosts and vars).",
)
@output_option
@click.option("-v", "--verbose", count=True, help="More detail (repeat for more).")
@click.version_option(package_name="flashhead-ops", prog_name="flashhead")
@click.pass_context
def cli(ctx: click.Context, inventory: str, verbose: int) -> None:
    """flashhead: take a bare GPU host to a served, verified SoulX-FlashHead model.

    Exit codes: 0 ok, 1 check failed, 2 usage, 3 connection/auth, 4 changes pending,
    5 remote command failed, 6 cluster error, 7 rollout failed, 8 host locked, 70 internal error.
    """
    app = ctx.ensure_object(App)
    app.inventory_path = inventory
    app.inventory_named = ctx.get_parameter_source("inventory") != click.core.ParameterSource.DEFAULT
    app.verbosity = verbose


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: every `with` closes (a kubectl pod is deleted), then exit 128+N."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; the only place that turns errors into messages and exit codes."""
    signal.signal(signal.SIGTERM, _terminated)
    app = App()
    try:
        cli.main(args=argv, obj=app, standalone_mode=False, prog_name="flashhead")
    except FlashheadError as error:
        app.output.error(error)
        sys.exit(int(error.exit_code))
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        app.output.err.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(int(ExitCode.USAGE))
    except KeyboardInterrupt:
        sys.exit(130)
    except ModuleNotFoundError as missing:
        app.output.error(UsageError(
            f"this install of flashhead-ops lacks the Python module {missing.name!r}",
            "reinstall the operator's CLI with its dependencies: pip install -e . (or pip install flashhead-ops); "
            "`flashhead serve` and `demo` also need the server extra: pip install -e '.[server]'"))
        sys.exit(int(ExitCode.USAGE))
    except Exception:  # noqa: BLE001 - the last line of defence: keep the traceback, say where
        path = write_traceback()
        print(f"internal error: the traceback is in {path}; please attach it to a bug report", file=sys.stderr)
        sys.exit(int(ExitCode.INTERNAL))
    sys.exit(int(app.exit_code))


def write_traceback() -> str:
    fd, path = tempfile.mkstemp(prefix="flashhead-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as handle:
        traceback.print_exc(file=handle)
    return path


if __name__ == "__main__":
    main()
