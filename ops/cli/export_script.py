"""`flashhead export-script HOST`: the playbook as one bash script for a human to run on the host."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.common import App, output_option, pass_app, resolve


@click.command(name="export-script")
@click.argument("host")
@click.option("--out", "out", metavar="PATH", default=None,
              help="Write the script here, mode 0755 (default: stdout). Only a new or existing regular file: "
                   "a device, FIFO, folder or symlink is refused.")
@click.option("--step", "only", multiple=True, metavar="NAME", help="Only this step (repeatable).")
@click.option("--skip", multiple=True, metavar="NAME", help="Leave this step out (repeatable).")
@click.option("--playbook", type=click.Path(dir_okay=False), default=None, help="Playbook YAML.")
@click.option("--source", metavar="DIR", default=None, help="Pre-staged checkpoints on the host.")
@click.option("--var", "var_overrides", multiple=True, metavar="KEY=VALUE", help="Override a var.")
@output_option
@pass_app
def export_script(app: App, host: str, out: str | None, only: tuple[str, ...], skip: tuple[str, ...],
                  playbook: str | None, source: str | None, var_overrides: tuple[str, ...]) -> None:
    """Write the provisioning steps for HOST as one self-contained bash script (no SSH needed).

    HOST (an inventory name, user@address or @local) only supplies vars; nothing connects to it.
    The script embeds its helper programs and the inference wheel, never a secret: HF_TOKEN is
    read from the environment of whoever runs it.
    """
    from ops.output import check_output_path, write_output_file
    from ops.playbook.export import render_script
    from ops.playbook.load import load_play

    if out is not None:
        check_output_path(out)  # before any work: a device, FIFO, folder or symlink is refused
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
