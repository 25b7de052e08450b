"""Long work shows progress: the host's output becomes progress events while a step applies.

Over the real sshd with a throttled loopback hub, the download's bytes reach the operator while the
download still runs; with a stalled hub, the operator is told what the step is still waiting on.
The parsing of the tools' own lines (pip, apt, ninja) is tested on their real formats.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pytest

from ops.playbook.progress import StepProgress
from tests.provision.conftest import TOKEN
from tests.provision.hf_server import HubServer, load_repos

LITE_FILE = "Model_Lite/diffusion_pytorch_model.safetensors"
PIP = """Looking in links: /srv/wheels
Collecting torch==2.7.1
  Downloading https://download.pytorch.org/whl/cu128/torch-2.7.1%2Bcu128-cp310-cp310-linux_x86_64.whl (1057.8 MB)
Building wheels for collected packages: flash-attn
  Building wheel for flash-attn (setup.py): started
[1/49] /usr/local/cuda/bin/nvcc --generate-dependencies-with-compile flash_fwd_hdim128_fp16_sm80.cu
[2/49] /usr/local/cuda/bin/nvcc --generate-dependencies-with-compile flash_fwd_hdim128_bf16_sm80.cu
Installing collected packages: mpmath, typing-extensions, sympy, torch
Successfully installed mpmath-1.3.0 sympy-1.13.3 torch-2.7.1+cu128 typing-extensions-4.12.2
"""
APT = """Get:1 http://deb.debian.org/debian bookworm/main amd64 ffmpeg amd64 7:5.1.6-0+deb12u1 [1,845 kB]
Fetched 61.3 MB in 4s (15.2 MB/s)
Unpacking ffmpeg (7:5.1.6-0+deb12u1) ...
Setting up ffmpeg (7:5.1.6-0+deb12u1) ...
"""


def collect(text: str, chunk: int = 7, **options: object) -> list[dict]:
    events: list[dict] = []
    progress = StepProgress("torch", events.append, **options)  # type: ignore[arg-type]
    data = text.encode()
    for offset in range(0, len(data), chunk):  # pieces that split lines and UTF-8 sequences
        progress.feed("stdout", data[offset:offset + chunk])
    return events


def test_pip_apt_and_build_lines_become_phases_and_steps() -> None:
    messages = [e["message"] for e in collect(PIP + APT)]
    assert messages == [
        "pip: collecting torch==2.7.1",
        "pip: downloading torch-2.7.1%2Bcu128-cp310-cp310-linux_x86_64.whl (1057.8 MB)",
        "pip: building a wheel for flash-attn",
        "building: step 1 of 49",  # the second [n/m] within a second is throttled
        "pip: installing 4 package(s)",
        "pip: installed 4 package(s)",
        "apt: downloading ffmpeg (1,845 kB)",
        "apt: fetched 61.3 MB in 4s (15.2 MB/s)",
        "apt: unpacking ffmpeg",
        "apt: setting up ffmpeg",
    ]
    build = next(e for e in collect(PIP) if e["kind"] == "build")
    assert (build["done"], build["total"], build["step"]) == (1, 49, "torch") and build["elapsed"] >= 0


def test_a_download_line_and_redaction() -> None:
    line = json.dumps({"file": LITE_FILE, "file_done": 5 * 2**20, "file_total": 11 * 2**20, "done": 6 * 2**20,
                       "total": 13 * 2**20, "rate": 2**20, "files_done": 3, "files_total": 9})
    [event] = collect(f"@@progress {line}\n@@cmd curl -H 'Authorization: hf_secret_x'\n@@other\n")
    assert event["kind"] == "download" and (event["done"], event["total"]) == (6 * 2**20, 13 * 2**20)
    assert event["message"] == (f"{LITE_FILE} 5.0 MiB of 11.0 MiB; 6.0 MiB of 13.0 MiB in all at 1.0 MiB/s, "
                                "7 s left")
    said: list[dict] = []
    progress = StepProgress("s", said.append, silence_s=0.3, redact=lambda t: t.replace("hf_secret_x", "***"))
    with progress:
        progress.feed("stderr", b"@@cmd curl -H 'Authorization: hf_secret_x' https://x\n")
        time.sleep(1.0)
    waiting = [e for e in said if e["kind"] == "waiting"]
    assert waiting and "still waiting on `curl -H 'Authorization: ***' https://x`" in waiting[0]["message"]
    assert all("hf_secret_x" not in json.dumps(e) for e in said)


def test_silence_is_announced_again_every_period_and_reset_by_output() -> None:
    said: list[dict] = []
    progress = StepProgress("s", said.append, silence_s=0.4)
    with progress:
        progress.feed("stdout", b"Collecting numpy\n")
        time.sleep(1.1)
        count = len([e for e in said if e["kind"] == "waiting"])
        progress.feed("stdout", b"Collecting pillow\n")
        time.sleep(0.2)
        after_output = len([e for e in said if e["kind"] == "waiting"])
    assert count == 2 and after_output == 2
    assert "still waiting on pip: collecting numpy" in next(e for e in said if e["kind"] == "waiting")["message"]


def test_the_terminal_view_draws_bars_with_rate_and_eta() -> None:
    from rich.console import Console

    from ops.cli.live import RunView
    from ops.output import Output

    output = Output("text")
    output._err_console = Console(file=io.StringIO(), force_terminal=True, width=150)
    view = RunView(output)
    assert output.interactive is False  # stderr is not a terminal here; force the bars
    output.__class__ = type("Terminal", (Output,), {"interactive": property(lambda self: True)})
    view({"event": "progress", "step": "checkpoints", "kind": "download", "done": 5 * 2**20,
          "total": 10 * 2**20, "message": "Model_Lite/x 5.0 MiB of 10.0 MiB", "elapsed": 3.0})
    assert view.bars is not None and view.bars.tasks[0].completed == 5 * 2**20
    view({"event": "progress", "step": "checkpoints", "kind": "waiting", "message": "still waiting on x"})
    view.close()
    drawn = output.err.file.getvalue()  # type: ignore[attr-defined]
    assert "still waiting on x" in drawn and "50%" in drawn


def provision_live(host, hub: HubServer, *args: str) -> tuple[int, list[tuple[float, dict | str]]]:
    """Run provision with the given hub, reading its stderr line by line as it arrives (time, line)."""
    host.write_inventory(hf_endpoint=hub.url)
    process = subprocess.Popen([sys.executable, "-m", "ops.cli.main", "--inventory", str(host.inventory),
                                "provision", "gpu-test", "--step", "preflight", "--step", "venv", "--step",
                                "checkpoints", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**__import__("os").environ, **host.env()})
    assert process.stderr is not None
    lines: list[tuple[float, dict | str]] = []
    for line in process.stderr:
        try:
            lines.append((time.monotonic(), json.loads(line)))
        except ValueError:
            lines.append((time.monotonic(), line))
    return process.wait(timeout=300), lines


@pytest.fixture
def slow_hub():
    hub = HubServer(load_repos(), require_token=TOKEN).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def progress_host(fresh_host_factory):
    return fresh_host_factory("progress")


def test_download_progress_reaches_the_operator_while_the_download_runs(progress_host, slow_hub):
    slow_hub.throttle_bps = 3 * 2**20  # the 11 MiB checkpoint takes about 4 s
    status, lines = provision_live(progress_host, slow_hub, "--output", "json")
    assert status == 0, lines
    [get] = [r for r in slow_hub.requests_for(LITE_FILE) if "finished" in r]
    downloads = [(at, r) for at, r in lines if isinstance(r, dict) and r.get("kind") == "download"]
    during = [(at, r) for at, r in downloads if at < get["finished"] and 0 < r["done"] < r["total"]]
    assert len(during) >= 2, downloads  # several updates arrived before the hub had sent the whole file
    assert any(r["file"] == LITE_FILE and 0 < r["file_done"] < r["file_total"] and r["rate"] > 0 for _, r in during)
    assert all(r["step"] == "checkpoints" and r["elapsed"] >= 0 for _, r in downloads)
    applies = [r["step"] for _, r in lines if isinstance(r, dict) and r.get("event") == "step_apply"]
    assert applies == ["preflight", "venv", "checkpoints"]
    phases = [r["message"] for _, r in lines if isinstance(r, dict) and r.get("kind") == "phase"]
    assert any(p.startswith("pip: ") for p in phases)  # huggingface_hub installed into the venv


def test_a_stalled_download_says_what_it_waits_on(progress_host, slow_hub):
    import shutil

    shutil.rmtree(progress_host.model_root / "models", ignore_errors=True)  # fetch again, from a stalling hub
    slow_hub.stall_s = 4.0
    status, lines = provision_live(progress_host, slow_hub, "--silence", "1")
    assert status == 0, lines
    text = "".join(line for _, line in lines if isinstance(line, str))
    assert "checkpoints: still waiting on " in text and "no output for" in text, text
    assert "@@" not in text
