"""`accept smoke`: live, ready, info, an avatar, one generated clip checked with ffprobe, one stream."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ops.acceptance.audio import SAMPLE_RATE, duration_s, fit_to_duration, load_pcm16
from ops.acceptance.checks import AcceptanceReport
from ops.acceptance.media import Expected, check_mp4, media_duration, probe_mp4, require_tools
from ops.acceptance.streaming import stream_clip
from ops.acceptance.target import RunStopped, Target, probe
from ops.acceptance.timing import expected_frames, frames_in_order
from ops.errors import ConnectionFailed, FlashheadError, UsageError
from ops.output import write_output_file

if TYPE_CHECKING:
    from inference.client import FlashheadClient

MP4_CHECKS = ["mp4.readable", "mp4.video_codec", "mp4.fps", "mp4.size", "mp4.audio", "mp4.duration",
              "mp4.motion", "mp4.faststart"]
STREAM_CHECKS = ["stream.ready", "stream.frames_in_order", "stream.frame_count", "stream.summary"]
CHECKS = ["live", "ready", "info", "weights", "avatar", "generate", *MP4_CHECKS, *STREAM_CHECKS]


async def run_smoke(target: Target, image: Path, audio: Path, clip_out: Path | None = None,
                    stream_seconds: float = 3.0) -> AcceptanceReport:
    """Run the smoke suite; the generated MP4 is kept at `clip_out` when given."""
    _validate_inputs(image, audio)
    require_tools()
    report = AcceptanceReport("smoke", target.url)
    started = time.perf_counter()
    try:
        async with target.client() as client:
            info = await probe(client, target, report)
            _weights(report, info)
            avatar_id = await _avatar(client, target, report, image)
            await _generate(client, target, report, image, audio, clip_out)
            await _stream(client, target, report, avatar_id, audio, stream_seconds)
    except RunStopped as stop:
        report.error = stop.error.to_dict()
    report.skip_rest(CHECKS, "not run: an earlier check failed")
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _weights(report: AcceptanceReport, info: dict) -> None:
    """A server on random weights (a capacity probe) makes noise, not faces: it must not pass smoke."""
    backend = info.get("backend_info") or {}
    weights = backend.get("weights")
    if weights == "random":
        report.add("weights", False, "the model runs on RANDOM weights (capacity probe mode)",
                   measured={"weights": weights},
                   remedy=backend.get("warning") or "provision the checkpoints and unset FLASHHEAD_WEIGHTS")
        return
    detail = f"{weights}" if weights else f"no weights ({info.get('backend')} backend)"
    report.add("weights", True, detail, measured={"weights": weights})


def _validate_inputs(image: Path, audio: Path) -> None:
    for flag, path in (("--image", image), ("--audio", audio)):
        if not path.is_file():
            raise UsageError(f"{flag} {path}: no such file", f"pass {flag} PATH, or leave it out for the default")


async def _avatar(client: FlashheadClient, target: Target, report: AcceptanceReport, image: Path) -> str | None:
    started = time.perf_counter()
    try:
        avatar_id = await client.create_avatar(image)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a named check
        _fail(report, "avatar", target.error(exc), started)
        return None
    report.add("avatar", True, f"POST /v1/avatars → {avatar_id}", measured={"avatar_id": avatar_id},
               seconds=_since(started))
    return avatar_id


async def _generate(client: FlashheadClient, target: Target, report: AcceptanceReport, image: Path,
                    audio: Path, clip_out: Path | None) -> None:
    audio_s = media_duration(audio)
    started = time.perf_counter()
    try:
        mp4 = await client.generate(audio, image=image)
    except Exception as exc:  # noqa: BLE001
        _fail(report, "generate", target.error(exc), started)
        return
    seconds = _since(started)
    report.add("generate", True, f"POST /v1/generate → {len(mp4)} bytes in {seconds:.2f} s",
               measured={"bytes": len(mp4), "seconds": seconds, "audio_seconds": round(audio_s, 3),
                         "realtime_factor": round(audio_s / seconds, 2) if seconds else None},
               seconds=seconds)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_output_file(clip_out or Path(tmp) / "smoke.mp4", mp4, option="--clip")
        report.measurements["clip"] = str(path) if clip_out else None
        started = time.perf_counter()
        checks = check_mp4(probe_mp4(path), Expected(duration_s=audio_s))
    for check in checks:
        check.seconds = _since(started)
        report.checks.append(check)


async def _stream(client: FlashheadClient, target: Target, report: AcceptanceReport, avatar_id: str | None,
                  audio: Path, stream_seconds: float) -> None:
    if avatar_id is None:
        return
    pcm = load_pcm16(audio)
    pcm = fit_to_duration(pcm, min(stream_seconds, duration_s(pcm)))
    started = time.perf_counter()
    try:
        run = await stream_clip(client, pcm, realtime=False, avatar_id=avatar_id)
    except Exception as exc:  # noqa: BLE001
        _fail(report, "stream.ready", target.error(exc), started)
        return
    seconds = _since(started)
    ready = run.ready
    report.add("stream.ready", True, f"fps {ready.get('fps')}, chunk frames {ready.get('chunk_frames')}",
               measured={k: ready.get(k) for k in ("fps", "width", "height", "chunk_frames") if k in ready},
               seconds=seconds)
    in_order, detail = frames_in_order(run.timeline)
    report.add("stream.frames_in_order", in_order, detail, measured={"frames": len(run.timeline.frames)})
    want = expected_frames(run.samples, SAMPLE_RATE, run.timeline.fps)
    got = len(run.timeline.frames)
    report.add("stream.frame_count", abs(got - want) <= 1, f"{got} frames for {want:.2f} frames of audio",
               measured={"frames": got, "audio_frames": round(want, 2),
                         "audio_seconds": round(run.samples / SAMPLE_RATE, 3)},
               threshold="within one frame of the audio")
    summary_ok = bool(run.summary)
    report.add("stream.summary", summary_ok,
               "summary received, connection closed normally" if summary_ok else "no summary before close",
               measured={k: v for k, v in run.summary.items() if k != "type" and not isinstance(v, (dict, list))})


def _fail(report: AcceptanceReport, name: str, error: FlashheadError, started: float) -> None:
    report.add(name, False, error.message, remedy=error.remedy, seconds=_since(started),
               error=isinstance(error, ConnectionFailed))
    if isinstance(error, ConnectionFailed):
        raise RunStopped(error)


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
