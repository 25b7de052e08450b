"""`flashhead demo`: the whole loop on this machine, no GPU and no cluster needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ops.cli.common import PORT_OR_ZERO, App, output_option, pass_app

if TYPE_CHECKING:
    from rich.console import Console

    from ops.acceptance.demo import DemoResult


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True,
              help="Folder for demo.mp4, junit.xml, smoke.json, fps.json and server.log.")
@click.option("--port", type=PORT_OR_ZERO, default=0, help="Loopback port for the server (default: a free one).")
@click.option("--profile", default="reference-cpu", show_default=True, help="FPS profile to accept against.")
@click.option("--open", "open_view", is_flag=True,
              help="Then keep the server up with its browser live view open (a photo and an audio file or the "
                   "microphone in, the avatar live); Ctrl-C stops it.")
@output_option
@pass_app
def demo(app: App, out: Path, port: int, profile: str, open_view: bool) -> None:
    """Start the server on 127.0.0.1 with the CPU reference backend, run `accept smoke` and
    `accept fps`, write the demo clip and the reports, print where they are, stop the server.
    With --open, the browser's live view comes in between (the token to paste is printed, never put
    in the URL).

    Exit code 0 when every check passed, 1 when one failed.
    """
    from ops.acceptance.demo import OUTPUT_FILES, run_demo
    from ops.cli.accept import check_outputs, exit_code

    if out.is_dir():
        check_outputs([("--out", out / name) for name in OUTPUT_FILES])

    app.output.progress(f"starting the inference server (reference backend) on 127.0.0.1{f':{port}' if port else ''} …")
    keep_open = (lambda url, token: watch_live_view(app, url, token)) if open_view else None
    result = run_demo(out, port=port, profile=profile, progress=app.output.progress, keep_open=keep_open)
    data = {"ok": result.ok, "files": result.files, "server_exit": result.server_exit,
            "reports": {report.suite: report.to_dict() for report in result.reports}}
    app.output.result(data, lambda console, _: render_demo(console, result))
    app.exit_code = exit_code(result.reports)


def watch_live_view(app: App, url: str, token: str) -> None:
    """Open the live view in the browser and wait for Ctrl-C (or stdin closing)."""
    import sys
    import webbrowser

    app.output.progress(f"live view: {url}  (paste this API token into the page: {token})")
    app.output.progress("press Ctrl-C to stop the server")
    webbrowser.open(url)
    try:
        while sys.stdin.read(1):  # a closed stdin (a script, CI) ends the wait too
            pass
    except KeyboardInterrupt:
        pass


def render_demo(console: Console, result: DemoResult) -> None:
    from ops.cli.accept import render_reports

    render_reports(console, result.reports, result.files)
    console.print(f"[dim]server:[/] stopped (exit status {result.server_exit})")
    if result.ok:
        console.print(f"[bold]the demo clip:[/] {result.files.get('clip')}")
