"""`flashhead accept smoke|fps`: acceptance tests against a running inference server.

Exit codes: 0 every check passed, 1 a check failed (or the server answered 503),
2 bad options, 3 the server is unreachable or refused the token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ops.cli.common import COUNT, RATE, SECONDS, App, output_option, pass_app
from ops.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from ops.acceptance.checks import AcceptanceReport
    from ops.acceptance.profiles import Scenario
    from ops.acceptance.target import Target

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_TOKEN_ENV = "FLASHHEAD_API_TOKEN"


def target_options(func: F) -> F:
    """Options shared by `accept smoke` and `accept fps`."""
    options = [
        click.option("--url", envvar="FLASHHEAD_URL", required=True, metavar="URL",
                     help="Server base URL, e.g. http://127.0.0.1:8000 (env FLASHHEAD_URL)."),
        click.option("--token-env", metavar="NAME", default=None,
                     help=f"Environment variable holding the bearer token (default: {DEFAULT_TOKEN_ENV} "
                          "when set). The token never goes on the command line."),
        click.option("--image", type=click.Path(path_type=Path), default=None,
                     help="Reference photo (default: the shipped drawn face)."),
        click.option("--audio", type=click.Path(path_type=Path), default=None,
                     help="Speech audio, any common format (default: the shipped espeak-ng clip)."),
        click.option("--junit", "junit_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
                     help="Write JUnit XML here (one testcase per check)."),
        click.option("--report", "json_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
                     help="Write the JSON report here (the same document as --output json)."),
        click.option("--wait-ready", type=SECONDS, default=0.0, show_default=True, metavar="SECONDS",
                     help="Wait this long for /readyz to answer 200 before failing."),
        click.option("--timeout", type=SECONDS, default=300.0, show_default=True, metavar="SECONDS",
                     help="Per-request timeout."),
        output_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def accept() -> None:
    """Acceptance tests against a running server: `smoke` (does it work) and `fps` (is it fast enough)."""


@accept.command()
@target_options
@click.option("--clip", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Keep the generated MP4 here.")
@click.option("--stream-seconds", type=SECONDS, default=3.0, show_default=True,
              help="Seconds of audio for the stream check.")
@pass_app
def smoke(app: App, url: str, token_env: str | None, image: Path | None, audio: Path | None,
          junit_path: Path | None, json_path: Path | None, wait_ready: float, timeout: float,
          clip: Path | None, stream_seconds: float) -> None:
    """Live/ready probes, /v1/info, an avatar, one generated MP4 checked with ffprobe, one stream."""
    from ops.acceptance.smoke import run_smoke

    check_outputs({"--junit": junit_path, "--report": json_path, "--clip": clip})
    target = make_target(url, token_env, timeout, wait_ready)
    image, audio = default_inputs(image, audio)
    app.output.progress(f"smoke test of {target.url} …")
    report = asyncio.run(run_smoke(target, image, audio, clip_out=clip, stream_seconds=stream_seconds))
    finish(app, [report], junit_path, json_path)


@accept.command()
@target_options
@click.option("--profile", default=None, metavar="NAME",
              help="Thresholds and scenarios from ops/acceptance/profiles.yaml (an unknown name lists them).")
@click.option("--mode", type=click.Choice(["throughput", "realtime"]), default=None,
              help="throughput: audio as fast as accepted; realtime: paced at 1× (default: the profile's, "
                   "else throughput).")
@click.option("--streams", type=COUNT, default=None, help="Concurrent streams (default: the profile's, else 1).")
@click.option("--duration", type=SECONDS, default=None, metavar="S",
              help="Measured seconds of audio per stream (default: the profile's, else 20).")
@click.option("--warmup", type=SECONDS, default=None, metavar="S",
              help="Seconds of audio per stream before measuring (default: the profile's, else 2).")
@click.option("--min-fps", type=RATE, default=None, metavar="X", help="Fail below X frames/s per stream.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Also write per-stream FPS over time and the chunk-latency distribution to PATH "
                   "(a self-contained .html file).")
@click.option("--gpus", type=COUNT, default=None, metavar="N",
              help="The URL is a Service over N pods, one per GPU: capacity is N pods', a profile's per-GPU "
                   "streams are multiplied by N, and each run reports streams per pod and refusals.")
@pass_app
def fps(app: App, url: str, token_env: str | None, image: Path | None, audio: Path | None,
        junit_path: Path | None, json_path: Path | None, wait_ready: float, timeout: float, profile: str | None,
        mode: str | None, streams: int | None, duration: float | None, warmup: float | None,
        min_fps: float | None, plot_path: Path | None, gpus: int | None) -> None:
    """Generated frames per second per stream and in aggregate, warm-up excluded, against thresholds."""
    from ops.acceptance.fps import run_fps
    from ops.acceptance.plot import ScenarioSeries, write_fps_plot

    if plot_path is not None and plot_path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--plot {plot_path}: the plot is a self-contained HTML file",
                         "name it with .html, e.g. --plot fps.html")
    check_outputs({"--junit": junit_path, "--report": json_path, "--plot": plot_path})
    target = make_target(url, token_env, timeout, wait_ready)
    image, audio = default_inputs(image, audio)
    scenarios = [s.for_gpus(gpus) for s in select_scenarios(profile, mode, streams, duration, warmup, min_fps)]
    app.output.progress(f"fps test of {target.url}: " + ", ".join(s.name for s in scenarios) + " …")
    series: list[ScenarioSeries] = []
    report = asyncio.run(run_fps(target, scenarios, image, audio, profile=profile, progress=app.output.progress,
                                 series=series))
    extra = None
    if plot_path is not None:
        extra = {"plot": str(write_fps_plot(plot_path, series, f"accept fps · {target.url}"))}
    finish(app, [report], junit_path, json_path, extra)


def check_outputs(paths: dict[str, Path | None] | list[tuple[str, Path]]) -> None:
    """Refuse output paths that are not regular files before the run, not after it."""
    from ops.output import check_output_path

    for option, path in (paths.items() if isinstance(paths, dict) else paths):
        if path is not None:
            check_output_path(path, option)


def make_target(url: str, token_env: str | None, timeout: float, wait_ready: float) -> Target:
    """The server target; the token comes from --token-env, else FLASHHEAD_API_TOKEN when set."""
    import os

    from ops.acceptance.target import Target

    if token_env is None and os.environ.get(DEFAULT_TOKEN_ENV):
        token_env = DEFAULT_TOKEN_ENV
    return Target.from_options(url, token_env, timeout_s=timeout, wait_ready_s=wait_ready)


def default_inputs(image: Path | None, audio: Path | None) -> tuple[Path, Path]:
    from ops.acceptance.assets import FACE_PNG, SPEECH_WAV

    return image or FACE_PNG, audio or SPEECH_WAV


def select_scenarios(profile: str | None, mode: str | None, streams: int | None, duration: float | None,
                     warmup: float | None, min_fps: float | None) -> list[Scenario]:
    """The profile's scenarios (filtered by --mode, overridden by options) or one from the options."""
    from ops.acceptance.profiles import custom_scenario, get_profile, override
    from ops.errors import UsageError

    if profile is None:
        return [custom_scenario(mode or "throughput", streams or 1, duration or 20.0,
                                2.0 if warmup is None else warmup, min_fps)]
    chosen = get_profile(profile).scenarios
    if mode is not None:
        chosen = tuple(s for s in chosen if s.mode == mode)
        if not chosen:
            raise UsageError(f"profile {profile} has no {mode} scenario",
                             "leave out --mode, or give --min-fps without --profile")
    return [override(s, streams=streams, duration_s=duration, warmup_s=warmup, min_fps=min_fps) for s in chosen]


def finish(app: App, reports: list[AcceptanceReport], junit_path: Path | None, json_path: Path | None,
           extra: dict[str, Any] | None = None) -> None:
    """Write the report files, render the result, and set the exit code."""
    from ops.acceptance.reports import write_reports

    written = write_reports(reports, junit_path, json_path)
    data: dict[str, Any] = {"ok": all(r.ok for r in reports), **(extra or {}), "written": written}
    if len(reports) == 1:
        data.update(reports[0].to_dict())
        data["written"] = written
    else:
        data["reports"] = {r.suite: r.to_dict() for r in reports}
    app.output.result(data, lambda console, _: render_reports(console, reports, written, extra))
    app.exit_code = exit_code(reports)


def exit_code(reports: list[AcceptanceReport]) -> ExitCode:
    """The error's code when a run stopped early, else 0 all passed / 1 something failed."""
    for report in reports:
        if report.error is not None:
            return ExitCode(report.error["exit_code"])
    return ExitCode.OK if all(r.ok for r in reports) else ExitCode.CHECK_FAILED


def render_reports(console: Console, reports: list[AcceptanceReport], written: dict[str, str],
                   extra: dict[str, Any] | None = None) -> None:
    for report in reports:
        render_report(console, report)
    for kind, path in {**(extra or {}), **written}.items():
        console.print(f"[dim]{kind}:[/] {path}")


def render_report(console: Console, report: AcceptanceReport) -> None:
    """A table of checks (result, measured, threshold), warm-up notes, the verdict and any remedy."""
    from rich.table import Table

    from ops.output import escape

    title = f"accept {report.suite} · {report.url}" + (f" · profile {report.profile}" if report.profile else "")
    table = Table(title=escape(title), title_justify="left", show_lines=False)
    table.add_column("check", no_wrap=True)
    for column in ("result", "measured", "threshold"):
        table.add_column(column, overflow="fold")
    marks = {"pass": "[green]✓ pass[/]", "fail": "[red]✗ fail[/]", "error": "[red]✗ error[/]",
             "skipped": "[yellow]• skipped[/]"}
    skipped = [check for check in report.checks if check.status == "skipped"]
    group = ""
    for check in report.checks:
        if check.status != "skipped" or len(skipped) < 3:
            prefix, _, leaf = check.name.rpartition(".")
            if prefix and prefix != group:  # a heading row per scenario / group keeps the column narrow
                table.add_row(f"[bold]{escape(prefix)}[/]", "", "", "")
            group = prefix
            table.add_row(f"  {escape(leaf)}" if prefix else escape(check.name), marks[check.status],
                          escape(check.detail), escape(check.threshold or ""))
    if len(skipped) >= 3:
        table.add_row(f"{len(skipped)} more", marks["skipped"], escape(skipped[0].detail), "")
    console.print(table)
    for name, block in report.measurements.items():
        if isinstance(block, dict) and "warmup" in block:
            warm = block["warmup"]
            console.print(f"[dim]{escape(name)}: warm-up {warm['audio_s']:g} s of audio ({warm['frames']} frames) "
                          f"excluded; took {', '.join(f'{s:g} s' for s in warm['seconds']) or 'n/a'}; "
                          f"aggregate {block['aggregate_fps']} fps[/]")
    for check in report.failed:
        if check.remedy and not (report.error and check.remedy == report.error.get("remedy")):
            console.print(f"[bold]{escape(check.name)}[/] → {escape(check.remedy)}")
        if check.source:
            console.print(f"  [dim]threshold source: {escape(check.source)}[/]")
    if report.error:
        console.print(f"[bold red]stopped:[/] {escape(report.error['message'])}")
        if report.error.get("remedy"):
            console.print(f"[bold]what to do:[/] {escape(report.error['remedy'])}")
    passed = sum(1 for c in report.checks if c.ok)
    verdict = "[green]PASS[/]" if report.ok else "[red]FAIL[/]"
    console.print(f"{verdict} {passed}/{len(report.checks)} checks passed in {report.seconds:.1f} s")
