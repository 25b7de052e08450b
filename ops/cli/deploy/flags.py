"""What several deploy verbs share: kubectl's connection flags, the render flags, durations."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import App, output_option, parse_key_values
from ops.errors import UsageError
from ops.output import escape

if TYPE_CHECKING:
    from ops.deploy.apply import ApplyOptions
    from ops.deploy.cluster import Cluster
    from ops.deploy.render import Rendered

F = Callable[..., Any]
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")


def cluster_options(func: F) -> F:
    """kubectl's connection flags."""
    for option in reversed([
        click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
                     help="Path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", default=None, help="Namespace (default: flashhead)."),
        output_option,
    ]):
        func = option(func)
    return func


def render_options(func: F) -> F:
    """The overlay, its `--set` values and `--host` (values from the inventory)."""
    for option in reversed([
        click.option("--overlay", default="single-gpu-host", show_default=True,
                     help="manifests/overlays/NAME: single-gpu-host or image."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="A parameter (node, model_root, model_type, image, replicas, max_streams, ...)."),
        click.option("--host", "host", default=None, metavar="NAME",
                     help="Take node, model_root and model_type from this inventory host (--set wins)."),
        click.option("--gpus-from-facts", is_flag=True, default=False,
                     help="With --host: one pod per GPU the host's nvidia-smi lists (a read-only query)."),
    ]):
        func = option(func)
    return func


def parse_duration(raw: str, flag: str = "--timeout") -> float:
    """`600`, `600s`, `10m`, `1h` → seconds."""
    match = DURATION.match(raw.strip())
    if not match:
        raise UsageError(f"{flag} {raw!r}: expected seconds or a duration like 90s, 10m, 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def render_from_flags(app: App, overlay: str, sets: tuple[str, ...], host: str | None,
                      namespace: str | None, gpus_from_facts: bool = False) -> Rendered:
    """Render with inventory values (--host, and its GPU count with --gpus-from-facts) overlaid by --set values."""
    from ops.deploy.render import render

    values: dict[str, str] = {}
    if gpus_from_facts and not host:
        raise UsageError("--gpus-from-facts needs --host NAME (the inventory host to ask)")
    if host:
        from ops.deploy import hostvalues

        values.update(hostvalues.values_from_host(app.inventory_path, host))
        if overlay != "single-gpu-host":
            values.pop("node", None)
        elif gpus_from_facts:
            values["gpus"] = str(hostvalues.gpus_from_facts(app.inventory_path, host))
    explicit = parse_key_values(sets, "--set")
    if "pool" in explicit:  # spread over a pool instead of the inventory host's node
        values.pop("node", None)
    values.update(explicit)
    return render(overlay, values, namespace)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    from ops.deploy.cluster import Cluster

    return Cluster.connect(kubeconfig, context, namespace)


def apply_options(app: App, wait: bool, timeout: str, **kwargs: Any) -> ApplyOptions:
    """ApplyOptions from the flags, with rollout progress printed as it changes."""
    from ops.deploy.apply import ApplyOptions

    return ApplyOptions(wait=wait, timeout=parse_duration(timeout), on_progress=progress_printer(app),
                        on_waiting=lambda text: app.output.progress(f"[dim]{escape(text)}[/]"), **kwargs)


def progress_printer(app: App) -> Callable[[Any], None]:
    """Print a rollout progress line (stderr) only when it differs from the last one."""
    last: list[str] = []

    def show(progress: Any) -> None:
        line = progress.summary()
        reasons = "; ".join(f"{r.kind}: {r.message}" for r in progress.reasons[:2])
        text = f"{line}" + (f" — {reasons}" if reasons else "")
        if not last or last[-1] != text:
            last.append(text)
            app.output.progress(f"[dim]rollout:[/] {escape(text)}")
            app.output.event({"event": "rollout", "progress": line, "reasons": reasons})
    return show
