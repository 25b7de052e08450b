"""MP4 checks with ffprobe/ffmpeg: container, codec, frame rate, size, audio, duration, motion.

`probe_mp4` runs the tools and returns plain facts; `check_mp4` turns facts into named checks,
so the judgement is testable on any facts without running ffprobe. Without the ffmpeg programs,
the same facts come from PyAV (`probe_av.py`) when the server extra is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ops.acceptance.checks import CheckResult
from ops.errors import UsageError

FFPROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class Expected:
    """What a generated clip must look like (the server's documented output)."""

    codec: str = "h264"
    pix_fmt: str = "yuv420p"
    fps: int = 25
    width: int = 512
    height: int = 512
    audio_codec: str | None = "aac"
    duration_s: float | None = None  # the input audio's duration


@dataclass
class MediaFacts:
    """What ffprobe/ffmpeg said about a file; `error` is set when the file is not a readable MP4."""

    format_name: str = ""
    video: dict[str, Any] = field(default_factory=dict)
    audio: dict[str, Any] = field(default_factory=dict)
    frames: int = 0
    distinct_frames: int = 0
    faststart: bool | None = None
    error: str | None = None
    tool: str = "ffprobe"


def has_ffmpeg() -> bool:
    """True when the ffprobe and ffmpeg programs are on PATH."""
    return all(shutil.which(tool) is not None for tool in ("ffprobe", "ffmpeg"))


def require_tools() -> None:
    """Fail early with the install command when neither ffprobe/ffmpeg nor PyAV is available."""
    from ops.acceptance import probe_av

    if not has_ffmpeg() and not probe_av.available():
        raise UsageError("ffprobe/ffmpeg not found on PATH (needed to check the MP4), and PyAV is not installed",
                         "install ffmpeg: `sudo apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg`")


def media_duration(path: Path) -> float:
    """Duration in seconds of an audio (or any media) file, from ffprobe (else PyAV)."""
    require_tools()
    if not has_ffmpeg():
        from ops.acceptance import probe_av

        seconds = probe_av.duration(path)
        if seconds is None:
            raise UsageError(f"{path}: cannot read it as audio", "pass a WAV, MP3, FLAC, OGG or M4A file")
        return seconds
    result = _run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)])
    if result.returncode != 0:
        raise UsageError(f"{path}: ffprobe cannot read it: {result.stderr.strip()[:300]}",
                         "pass a WAV, MP3, FLAC, OGG or M4A file")
    try:
        return float(json.loads(result.stdout)["format"]["duration"])
    except (KeyError, ValueError) as error:
        raise UsageError(f"{path}: no duration in ffprobe's answer ({error})", "pass a valid audio file") from None


def probe_mp4(path: Path, tool: str | None = None) -> MediaFacts:
    """Run ffprobe (streams, container) and ffmpeg (per-frame MD5s) on `path`.

    `tool` forces "ffprobe" or "pyav"; by default ffprobe when installed, else PyAV.
    """
    require_tools()
    if tool == "pyav" or (tool is None and not has_ffmpeg()):
        from ops.acceptance import probe_av

        return probe_av.probe(path, MediaFacts(tool="PyAV", faststart=_moov_before_mdat(path)))
    result = _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                   str(path)])
    if result.returncode != 0:
        return MediaFacts(error=f"ffprobe cannot read the file: {result.stderr.strip()[:300] or 'no output'}")
    data = json.loads(result.stdout or "{}")
    streams = data.get("streams", [])
    facts = MediaFacts(
        format_name=data.get("format", {}).get("format_name", ""),
        video=next((s for s in streams if s.get("codec_type") == "video"), {}),
        audio=next((s for s in streams if s.get("codec_type") == "audio"), {}),
        faststart=_moov_before_mdat(path),
    )
    if facts.video:
        hashes, error = _frame_hashes(path)
        facts.frames, facts.distinct_frames = len(hashes), len(set(hashes))
        if error:
            facts.error = error
    return facts


def check_mp4(facts: MediaFacts, expected: Expected, prefix: str = "mp4") -> list[CheckResult]:
    """Named checks of a clip against what the server documents; one result per property."""
    if facts.error and not facts.video:
        return [CheckResult(f"{prefix}.readable", False, facts.error,
                            remedy="the server returned something that is not a playable MP4; "
                                   "check its logs for the muxer error")]
    checks = [CheckResult(f"{prefix}.readable", facts.error is None and "mp4" in facts.format_name,
                          facts.error or f"{'MP4' if 'mp4' in facts.format_name else facts.format_name} "
                                         f"(read with {facts.tool})",
                          measured={"format": facts.format_name, "tool": facts.tool})]
    video = facts.video
    codec, pix_fmt = video.get("codec_name"), video.get("pix_fmt")
    checks.append(CheckResult(f"{prefix}.video_codec", codec == expected.codec and pix_fmt == expected.pix_fmt,
                              f"{codec} {pix_fmt}", measured={"codec": codec, "pix_fmt": pix_fmt},
                              threshold=f"{expected.codec} {expected.pix_fmt}"))
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    checks.append(CheckResult(f"{prefix}.fps", fps == expected.fps, f"{_fmt(fps)} fps",
                              measured={"fps": _fmt(fps)}, threshold=f"== {expected.fps}"))
    size = (video.get("width"), video.get("height"))
    checks.append(CheckResult(f"{prefix}.size", size == (expected.width, expected.height),
                              f"{size[0]}×{size[1]}", measured={"width": size[0], "height": size[1]},
                              threshold=f"{expected.width}×{expected.height}"))
    if expected.audio_codec:
        audio_codec = facts.audio.get("codec_name")
        checks.append(CheckResult(f"{prefix}.audio", audio_codec == expected.audio_codec,
                                  f"{audio_codec or 'no audio stream'}", measured={"codec": audio_codec},
                                  threshold=f"an {expected.audio_codec} stream"))
    checks.append(_duration_check(facts, expected, prefix))
    checks.append(CheckResult(f"{prefix}.motion", facts.distinct_frames > 1,
                              f"{facts.distinct_frames} distinct of {facts.frames} frames",
                              measured={"frames": facts.frames, "distinct_frames": facts.distinct_frames},
                              threshold="frames not all identical",
                              remedy=None if facts.distinct_frames > 1 else
                              "the video does not move: the backend ignores the audio"))
    checks.append(CheckResult(f"{prefix}.faststart", facts.faststart is True,
                              {True: "moov before mdat", False: "moov after mdat", None: "no moov/mdat"}[
                                  facts.faststart], measured={"faststart": facts.faststart},
                              threshold="moov before mdat (plays while downloading)"))
    return checks


def _duration_check(facts: MediaFacts, expected: Expected, prefix: str) -> CheckResult:
    frame = 1 / expected.fps
    rate = _rate(facts.video.get("avg_frame_rate")) or expected.fps
    video_s = facts.frames / rate if facts.frames else _float(facts.video.get("duration"))
    measured = {"video_duration_s": _round(video_s), "frames": facts.frames,
                "audio_duration_s": _round(expected.duration_s)}
    if expected.duration_s is None or video_s is None:
        return CheckResult(f"{prefix}.duration", video_s is not None and video_s > 0,
                           f"{_round(video_s)} s", measured=measured, threshold="> 0 s")
    delta = abs(video_s - expected.duration_s)
    measured["difference_s"] = _round(delta)
    return CheckResult(f"{prefix}.duration", delta <= frame + 1e-6,
                       f"video {video_s:.3f} s vs audio {expected.duration_s:.3f} s (Δ {delta:.3f} s)",
                       measured=measured, threshold=f"|video − audio| ≤ one frame ({frame:.2f} s)")


def _frame_hashes(path: Path) -> tuple[list[str], str | None]:
    result = _run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"])
    hashes = [line.rsplit(",", 1)[-1].strip() for line in result.stdout.splitlines()
              if line and not line.startswith("#")]
    error = None if result.returncode == 0 else f"ffmpeg cannot decode every frame: {result.stderr.strip()[:300]}"
    return hashes, error


def _moov_before_mdat(path: Path) -> bool | None:
    """Walk the top-level MP4 boxes; True when `moov` comes before `mdat` (faststart)."""
    with path.open("rb") as handle:
        while True:
            header = handle.read(8)
            if len(header) < 8:
                return None
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if kind in (b"moov", b"mdat"):
                return kind == b"moov"
            if size == 1:
                size = int.from_bytes(handle.read(8), "big") - 8
            elif size == 0:
                return None
            if size < 8:
                return None
            handle.seek(size - 8, 1)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=FFPROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]} timed out after {FFPROBE_TIMEOUT_S} s")


def _rate(text: str | None) -> float | None:
    if not text or text in ("0/0", "0"):
        return None
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 3)
