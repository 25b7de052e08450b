"""`accept fps --plot`: the pictures' arithmetic on hand-made timelines, and the file a real run writes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ops.acceptance.localserver import LocalServer
from ops.acceptance.plot import fps_over_time, histogram
from ops.acceptance.timing import Timeline
from tests.conftest import run_cli

SVG = "{http://www.w3.org/2000/svg}"


def test_fps_over_time_counts_arrivals_per_bin() -> None:
    timeline = Timeline(16000, sent=[(16000, 100.0)])
    timeline.frames = [(i, i // 24, 100.0 + 0.1 + i * 0.02) for i in range(50)]  # 50 fps for one second
    assert fps_over_time(timeline, bin_s=0.5) == [(0.5, 40.0), (1.0, 50.0), (1.5, 10.0)]
    assert fps_over_time(Timeline(16000)) == []


def test_histogram_bins_cover_the_range_and_count_everything() -> None:
    bars = histogram([10.0, 12.0, 30.0, 50.0], bins=4)
    assert [count for *_, count in bars] == [2, 0, 1, 1] and bars[0][0] == 10.0 and bars[-1][1] == 50.0
    assert histogram([]) == []


def test_a_real_run_writes_one_chart_pair_per_scenario(reference_server: LocalServer, tmp_path: Path) -> None:
    plot = tmp_path / "fps.html"
    result = run_cli("accept", "fps", "--url", reference_server.url, "--token-env", "ACCEPT_TOKEN",
                     "--mode", "throughput", "--streams", "2", "--duration", "2", "--warmup", "1",
                     "--plot", str(plot), env={"ACCEPT_TOKEN": reference_server.token or ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"plot: {plot}" in " ".join(result.stdout.split())
    text = plot.read_text()
    assert not re.search(r"\b(src|href)=", text) and "<script" not in text  # self-contained: loads nothing
    root = ET.fromstring(text.split("\n", 1)[1])  # (after the doctype) well-formed XHTML with inline SVG
    charts = list(root.iter(SVG + "svg"))
    assert [chart.get("class") for chart in charts] == ["fps-over-time", "chunk-latency"]
    assert len(list(charts[0].iter(SVG + "polyline"))) == 2  # one line per stream
    bars = [int(bar.find(SVG + "title").text.rsplit(": ", 1)[1]) for bar in charts[1].iter(SVG + "rect")]
    # 2 s measured per stream = 2 chunks of 24 frames after warm-up (rounded up to whole chunks): every one counted.
    assert sum(bars) >= 4 and "chunk latency, " + str(sum(bars)) + " chunks" in text


def test_a_plot_that_is_not_html_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("accept", "fps", "--url", "http://127.0.0.1:9", "--plot", str(tmp_path / "fps.png"))
    assert result.returncode == 2 and "self-contained HTML" in result.stderr
