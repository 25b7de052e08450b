"""`flashhead export-script HOST`: the playbook as one bash script for a human to run on the host."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from ops.cli.common import App, output_option, pass_app, resolve
from ops.cli.fanout import Targets, fan_out, fleet_options
from ops.errors import UsageError

SCRIPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a host name that is safe as a file name


@click.command(name="export-script")
@click.argument("host")
@click.option("--out", "out", metavar="PATH", default=None,
              help="Write the script here, mode 0755 (default: stdout). Only a new or existing regular file: "
                   "a device, FIFO, folder or symlink is refused. With a group or pattern: a folder (new or "
                   "existing, not a symlink) that receives one HOST.sh per host.")
@click.option("--step", "only", multiple=True, metavar="NAME", help="Only this step (repeatable).")
@click.option("--skip", multiple=True, metavar="NAME", help="Leave this step out (repeatable).")
@click.option("--playbook", type=click.Path(dir_okay=False), default=None, help="Playbook YAML.")
@click.option("--source", metavar="DIR", default=None, help="Pre-staged checkpoints on the host.")
@click.option("--var", "var_overrides", multiple=True, metavar="KEY=VALUE", help="Override a var.")
@fleet_options
@output_option
@pass_app
def export_script(app: App, host: str, out: str | None, only: tuple[str, ...], skip: tuple[str, ...],
                  playbook: str | None, source: str | None, var_overrides: tuple[str, ...], forks: int,
                  max_fail_percentage: float | None) -> None:
    """Write the provisioning steps for HOST as one self-contained bash script (no SSH needed).

    HOST (an inventory name, user@address or @local) only supplies vars; nothing connects to it.
    The script embeds its helper programs and the inference wheel, never a secret: HF_TOKEN is
    read from the environment of whoever runs it. HOST may be a group or pattern: then --out names a
    folder and each host's script is written there as HOST.sh.
    """
    from ops.output import check_output_path

    folder: Path | None = None

    def one_host(app: App, target: Any) -> None:
        path = out if folder is None else str(folder / f"{_file_name(target.name)}.sh")
        export_one(app, target, path, only, skip, playbook, source, var_overrides)

    targets = Targets(host, None, var_overrides, playbook, forks, max_fail_percentage)
    from ops.cli.fanout import pattern_hosts

    if pattern_hosts(app, targets) is not None:
        if out is None:
            raise UsageError(f"{host!r} names several hosts: give --out DIR for their scripts (one HOST.sh each)")
        folder = check_output_folder(out)
    elif out is not None:
        check_output_path(out)  # before any work: a device, FIFO, folder or symlink is refused
    fan_out(app, targets, "export-script", one_host, lambda data: ("ok", f"wrote {data['script']}"))


def export_one(app: App, host: Any, out: str | None, only: tuple[str, ...], skip: tuple[str, ...],
               playbook: str | None, source: str | None, var_overrides: tuple[str, ...]) -> None:
    """One host's script, to `out` or stdout."""
    from ops.output import write_output_file
    from ops.playbook.export import render_script
    from ops.playbook.load import load_play

    resolved = resolve(app, host, var_overrides=var_overrides, playbook=playbook)
    play = load_play(playbook, resolved.vars)
    name = Path(out).name if out else "flashhead-provision.sh"
    script = render_script(play, resolved.target, only, skip, source, name=name)
    if out is None:
        click.echo(script, nl=False)
        return
    target = write_output_file(out, script, mode=0o755)
    app.output.result({"host": resolved.target, "script": str(target), "bytes": len(script.encode()),
                       "steps": [line.split()[1] for line in script.splitlines() if line.startswith("run_step ")]},
                      lambda console, data: console.print(
                          f"wrote {data['script']} ({data['bytes']} bytes, steps: {', '.join(data['steps'])}); "
                          f"copy it to the host and run: bash {Path(data['script']).name}"))


def check_output_folder(path: str) -> Path:
    """`--out DIR` for a group: a folder that exists (and is not a symlink) or that this creates."""
    import os
    import stat

    from ops.errors import OutputPathError

    folder = Path(path).expanduser()
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise OutputPathError(f"--out {folder}: cannot create the folder: {exc.strerror}",
                                  "give a folder path this user can write") from exc
        return folder
    if not stat.S_ISDIR(info.st_mode):
        raise OutputPathError(f"--out {folder} is not a folder (a group's scripts go into a folder, one per host)",
                              "give the path of a new or existing folder; a symbolic link is not followed")
    return folder


def _file_name(host_name: str) -> str:
    if not SCRIPT_NAME.fullmatch(host_name):
        raise UsageError(f"host name {host_name!r} cannot be a file name for its script",
                         "name hosts with letters, digits, '.', '_' and '-' (not starting with '.' or '-')")
    return host_name
