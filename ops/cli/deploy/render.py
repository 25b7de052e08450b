"""`flashhead deploy render`: the final YAML (or the objects as JSON) for an overlay and values."""

from __future__ import annotations

import click

from ops.cli.common import App, output_option, pass_app
from ops.cli.deploy.flags import render_from_flags, render_options


@click.command()
@render_options
@click.option("-n", "--namespace", default=None, help="Namespace (default: the overlay's, flashhead).")
@output_option
@pass_app
def render(app: App, overlay: str, sets: tuple[str, ...], host: str | None, gpus_from_facts: bool,
           namespace: str | None) -> None:
    """Print the final YAML (or the objects as JSON) for an overlay and parameters."""
    rendered = render_from_flags(app, overlay, sets, host, namespace, gpus_from_facts)
    if app.output.json:
        app.output.result({"overlay": rendered.overlay, "namespace": rendered.namespace,
                           "values": rendered.values, "objects": rendered.objects})
    else:
        click.echo(rendered.to_yaml(), nl=False)
