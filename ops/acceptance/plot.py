"""`accept fps --plot PATH`: per-stream FPS over time and the chunk-latency distribution, as one
self-contained HTML file (inline SVG, no script, nothing fetched: it opens anywhere, CI keeps it).
Standard library only, so the operator's install stays light.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

from ops.acceptance.timing import Timeline, chunk_latencies_ms, percentile

WIDTH, HEIGHT, MARGIN = 640, 260, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


@dataclass
class ScenarioSeries:
    """What one scenario's streams observed, for the pictures."""

    name: str
    mode: str
    timelines: list[Timeline]
    warmup_frames: int


def fps_over_time(timeline: Timeline, bin_s: float = 0.5) -> list[tuple[float, float]]:
    """(seconds since the stream's first audio, frames received per second in that bin), per bin."""
    start = timeline.first_audio_at
    if start is None or not timeline.frames:
        return []
    arrivals = [received - start for _, _, received in timeline.frames]
    bins = [0] * (int(max(arrivals) / bin_s) + 1)
    for arrival in arrivals:
        bins[int(max(0.0, arrival) / bin_s)] += 1
    return [(round((number + 1) * bin_s, 3), count / bin_s) for number, count in enumerate(bins)]


def histogram(values: list[float], bins: int = 20) -> list[tuple[float, float, int]]:
    """(low, high, count) for `bins` equal bins over the values' range."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return [(low + number * width, low + (number + 1) * width, count) for number, count in enumerate(counts)]


def render_html(series: list[ScenarioSeries], title: str) -> str:
    sections = []
    for scenario in series:
        lines = [fps_over_time(timeline) for timeline in scenario.timelines]
        latencies = [value for timeline in scenario.timelines
                     for value in chunk_latencies_ms(timeline, scenario.warmup_frames)]
        sections.append(
            f"<section><h2>{html.escape(scenario.name)} · {len(lines)} {html.escape(scenario.mode)} stream(s)</h2>"
            f"{_line_chart(lines)}{_histogram_chart(latencies)}</section>")
    return ("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{html.escape(title)}</title><style>body{{font:14px sans-serif;margin:1.5em;color:#222}}"
            "svg{background:#fafafa;border:1px solid #ddd;margin:.5em 1em .5em 0}text{font:11px sans-serif}"
            f"</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n")


def write_fps_plot(path: Path, series: list[ScenarioSeries], title: str) -> Path:
    """Write the HTML atomically (only over a regular file); returns the path."""
    from ops.output import write_output_file

    return write_output_file(path, render_html(series, title), option="--plot")


def _line_chart(lines: list[list[tuple[float, float]]]) -> str:
    points = [point for line in lines for point in line]
    if not points:
        return "<p>no frames</p>"
    x_max = max(x for x, _ in points)
    y_max = _nice(max(y for _, y in points))
    body = [_axes("seconds since the first audio", "frames / s (0.5 s bins)", x_max, y_max)]
    for number, line in enumerate(lines):
        drawn = " ".join(f"{_x(x, x_max):.1f},{_y(y, y_max):.1f}" for x, y in line)
        colour = COLOURS[number % len(COLOURS)]
        body.append(f"<polyline class=\"stream\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" "
                    f"points=\"{drawn}\"><title>stream {number}</title></polyline>")
        body.append(f"<text x=\"{WIDTH - MARGIN + 4}\" y=\"{MARGIN + 14 * number}\" fill=\"{colour}\">#{number}</text>")
    return _svg("fps-over-time", "FPS per stream over time", body)


def _histogram_chart(latencies: list[float]) -> str:
    bars = histogram(latencies)
    if not bars:
        return "<p>no chunk latencies (too few chunks after warm-up)</p>"
    x_low, x_high = bars[0][0], bars[-1][1]
    y_max = _nice(max(count for _, _, count in bars))
    body = [_axes("chunk latency, ms (audio sent → its last frame received)", "chunks", x_high - x_low, y_max,
                  x_offset=x_low)]
    for low, high, count in bars:
        left, right = _x(low - x_low, x_high - x_low), _x(high - x_low, x_high - x_low)
        top = _y(count, y_max)
        body.append(f"<rect class=\"bar\" x=\"{left:.1f}\" y=\"{top:.1f}\" width=\"{max(0.5, right - left - 1):.1f}\" "
                    f"height=\"{HEIGHT - MARGIN - top:.1f}\" fill=\"#1f77b4\"><title>{low:.0f}–{high:.0f} ms: "
                    f"{count}</title></rect>")
    for q in (50, 95):
        value = percentile(latencies, q)
        assert value is not None
        x = _x(value - x_low, x_high - x_low)
        body.append(f"<line x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{MARGIN}\" y2=\"{HEIGHT - MARGIN}\" stroke=\"#d62728\" "
                    f"stroke-dasharray=\"4 3\"/><text x=\"{x + 3:.1f}\" y=\"{MARGIN + 12}\">p{q} {value:.0f} ms</text>")
    return _svg("chunk-latency", f"chunk latency, {len(latencies)} chunks", body)


def _svg(kind: str, caption: str, body: list[str]) -> str:
    return (f"<svg class=\"{kind}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" "
            f"viewBox=\"0 0 {WIDTH} {HEIGHT}\"><text x=\"{MARGIN}\" y=\"18\" font-weight=\"bold\">"
            f"{html.escape(caption)}</text>{''.join(body)}</svg>")


def _axes(x_label: str, y_label: str, x_span: float, y_max: float, x_offset: float = 0.0) -> str:
    ticks = []
    for number in range(5):
        value = y_max * number / 4
        ticks.append(f"<text x=\"{MARGIN - 6}\" y=\"{_y(value, y_max) + 4:.1f}\" text-anchor=\"end\">{value:g}</text>")
        x_value = x_span * number / 4
        ticks.append(f"<text x=\"{_x(x_value, x_span):.1f}\" y=\"{HEIGHT - MARGIN + 14}\" text-anchor=\"middle\">"
                     f"{x_offset + x_value:.3g}</text>")
    return (f"<line x1=\"{MARGIN}\" y1=\"{HEIGHT - MARGIN}\" x2=\"{WIDTH - MARGIN}\" y2=\"{HEIGHT - MARGIN}\" "
            f"stroke=\"#555\"/><line x1=\"{MARGIN}\" y1=\"{MARGIN}\" x2=\"{MARGIN}\" y2=\"{HEIGHT - MARGIN}\" "
            f"stroke=\"#555\"/>{''.join(ticks)}<text x=\"{WIDTH / 2}\" y=\"{HEIGHT - 8}\" text-anchor=\"middle\">"
            f"{html.escape(x_label)}</text><text x=\"12\" y=\"{HEIGHT / 2}\" transform=\"rotate(-90 12 {HEIGHT / 2})\" "
            f"text-anchor=\"middle\">{html.escape(y_label)}</text>")


def _x(value: float, span: float) -> float:
    return MARGIN + (WIDTH - 2 * MARGIN) * (value / span if span else 0)


def _y(value: float, y_max: float) -> float:
    return HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * (value / y_max if y_max else 0)


def _nice(value: float) -> float:
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value)
