"""`flashhead serve`: run the bundled inference server (`inference/`) on this machine."""

from __future__ import annotations

import errno
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from inference.backends import BACKEND_NAMES, MODEL_TYPES
from ops.cli.common import COUNT, MILLISECONDS, PORT, App, output_option, pass_app
from ops.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from rich.console import Console


@click.command()
@click.option("--host", default=None, help="Bind address (FLASHHEAD_HOST, default 127.0.0.1).")
@click.option("--port", type=PORT, default=None, help="TCP port (FLASHHEAD_PORT, default 8000).")
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default=None,
              help="reference: CPU, no model (CI, demos); flashhead: the GPU model (FLASHHEAD_BACKEND).")
@click.option("--model-type", type=click.Choice(MODEL_TYPES), default=None, help="FLASHHEAD_MODEL_TYPE.")
@click.option("--model-root", type=click.Path(path_type=Path), default=None,
              help="Repo, checkpoints and venv prepared by `flashhead provision` (FLASHHEAD_MODEL_ROOT).")
@click.option("--max-streams", type=COUNT, default=None, help="Concurrent streams (FLASHHEAD_MAX_STREAMS).")
@click.option("--max-batch", type=COUNT, default=None, help="Streams per backend call (FLASHHEAD_MAX_BATCH).")
@click.option("--idle-frames/--no-idle-frames", default=None, help="Frames of silence while no audio arrives.")
@click.option("--reference-chunk-ms", type=MILLISECONDS, default=None,
              help="Reference backend: emulated compute time per chunk (FLASHHEAD_REFERENCE_CHUNK_MS).")
@click.option("--check", is_flag=True, help="Validate the settings, print them and exit without serving.")
@output_option
@pass_app
def serve(app: App, check: bool, **options: Any) -> None:
    """Run the inference server until SIGTERM/Ctrl-C (settings from FLASHHEAD_* and these flags).

    The API token comes only from the environment (FLASHHEAD_API_TOKEN), never from a flag. A
    non-loopback --host needs it. The protocol is described in docs/protocol.md.
    """
    config = _config(options)
    if check:
        app.output.result({"ok": True, "config": config.public()}, _render_config)
        return
    from inference.errors import InferenceError
    from inference.server import run

    _require_bindable(config.host, config.port, "--port" if options.get("port") else "FLASHHEAD_PORT")
    app.output.err.print(f"serving {config.backend} on http://{config.host}:{config.port} (Ctrl-C stops)")
    try:
        status = run(config)
    except InferenceError as error:
        raise CheckFailed(f"the server could not start: {error.message}", error.remedy) from None
    if status:
        raise CheckFailed("the server stopped with an error (see the log above)",
                          "fix the cause in the log and run `flashhead serve` again")


def _config(options: dict[str, Any]) -> Any:
    """The server settings; an error about a setting given as a flag names the flag, not the variable."""
    from inference.config import PREFIX, from_env
    from inference.errors import ConfigError

    try:
        return from_env(**options)
    except ConfigError as error:
        message = error.message
        for name, value in options.items():
            if value is not None:
                message = re.sub(rf"\b{PREFIX}{name.upper()}\b", "--" + name.replace("_", "-"), message)
        raise UsageError(message, error.remedy) from None


def _require_bindable(host: str, port: int, option: str) -> None:
    """Fail before saying "serving" when the address cannot be bound (a busy port, a foreign address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"{option} {port}: the port is in use on {host}",
                                 f"stop what listens there (ss -ltnp 'sport = :{port}'), or pick another "
                                 "with --port or FLASHHEAD_PORT") from None
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}",
                             "use an address of this machine with --host or FLASHHEAD_HOST (127.0.0.1, 0.0.0.0)"
                             ) from None


def _render_config(console: Console, data: dict) -> None:
    from rich.table import Table

    table = Table("setting", "value", title="flashhead serve --check: settings are valid")
    for key, value in data["config"].items():
        table.add_row(f"FLASHHEAD_{key.upper()}", str(value))
    console.print(table)
