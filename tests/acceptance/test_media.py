"""ffprobe media checks on real MP4s made with ffmpeg: a good clip passes, each defect names its check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ops.acceptance.media import Expected, check_mp4, media_duration, probe_mp4


def make_mp4(path: Path, *, size: str = "512x512", rate: int = 25, seconds: float = 2.0, audio: bool = True,
             still: bool = False, faststart: bool = True, codec: str = "libx264") -> Path:
    video = f"color=c=gray:s={size}:r={rate}:d={seconds}" if still else f"testsrc2=s={size}:r={rate}:d={seconds}"
    argv = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", video]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={seconds}"]
    argv += ["-c:v", codec, "-pix_fmt", "yuv420p", "-preset", "ultrafast"] if codec == "libx264" else ["-c:v", codec]
    if audio:
        argv += ["-c:a", "aac", "-shortest"]
    if faststart:
        argv += ["-movflags", "+faststart"]
    subprocess.run([*argv, str(path)], check=True)
    return path


@pytest.fixture(params=["ffprobe", "pyav"])
def tool(request: pytest.FixtureRequest) -> str:
    """The ffmpeg programs, or PyAV (used when they are not installed): same facts, same verdicts."""
    return str(request.param)


def verdicts(path: Path, tool: str, duration_s: float | None = 2.0) -> dict[str, bool | None]:
    return {check.name: check.ok for check in check_mp4(probe_mp4(path, tool), Expected(duration_s=duration_s))}


def test_a_clip_as_the_server_documents_it_passes_every_check(tmp_path: Path, tool: str) -> None:
    results = verdicts(make_mp4(tmp_path / "good.mp4"), tool)
    assert results == {name: True for name in results}
    assert set(results) == {"mp4.readable", "mp4.video_codec", "mp4.fps", "mp4.size", "mp4.audio",
                            "mp4.duration", "mp4.motion", "mp4.faststart"}


@pytest.mark.parametrize(("options", "failing"), [
    ({"rate": 30}, "mp4.fps"),
    ({"size": "640x480"}, "mp4.size"),
    ({"audio": False}, "mp4.audio"),
    ({"still": True}, "mp4.motion"),
    ({"faststart": False}, "mp4.faststart"),
    ({"codec": "mpeg4"}, "mp4.video_codec"),
    ({"seconds": 2.2}, "mp4.duration"),
])
def test_each_defect_fails_its_own_check(tmp_path: Path, options: dict, failing: str, tool: str) -> None:
    results = verdicts(make_mp4(tmp_path / "clip.mp4", **options), tool)
    assert results[failing] is False
    others = {name: ok for name, ok in results.items() if name != failing}
    assert all(others.values()), others


def test_duration_within_one_frame_passes_and_shows_the_difference(tmp_path: Path, tool: str) -> None:
    clip = make_mp4(tmp_path / "clip.mp4", seconds=2.0)
    checks = {c.name: c for c in check_mp4(probe_mp4(clip, tool), Expected(duration_s=2.03))}
    assert checks["mp4.duration"].ok is True
    assert checks["mp4.duration"].measured["difference_s"] == pytest.approx(0.03, abs=0.001)
    checks = {c.name: c for c in check_mp4(probe_mp4(clip, tool), Expected(duration_s=2.05))}
    assert checks["mp4.duration"].ok is False
    assert "Δ 0.050 s" in checks["mp4.duration"].detail


def test_garbage_is_reported_as_unreadable_with_the_tools_reason(tmp_path: Path, tool: str) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not an mp4 at all" * 100)
    checks = check_mp4(probe_mp4(garbage, tool), Expected(duration_s=2.0))
    assert [c.name for c in checks] == ["mp4.readable"]
    assert checks[0].ok is False
    assert {"ffprobe": "ffprobe cannot read the file", "pyav": "PyAV cannot read the file"}[tool] in checks[0].detail
    assert checks[0].remedy


def test_a_truncated_clip_fails(tmp_path: Path, tool: str) -> None:
    clip = make_mp4(tmp_path / "clip.mp4", faststart=False)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])  # the moov box (at the end) is cut off
    results = verdicts(clip, tool)
    assert results["mp4.readable"] is False


def test_media_duration_reads_the_shipped_speech() -> None:
    from ops.acceptance.assets import SPEECH_WAV

    assert 3.0 < media_duration(SPEECH_WAV) < 10.0


def test_without_the_ffmpeg_programs_pyav_reads_the_clip_and_the_audio(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from ops.acceptance import audio, media

    clip = make_mp4(tmp_path / "clip.mp4")
    monkeypatch.setattr(media.shutil, "which", lambda name: None)  # as on a machine without ffmpeg
    checks = check_mp4(probe_mp4(clip), Expected(duration_s=2.0))
    assert all(c.ok for c in checks) and "read with PyAV" in checks[0].detail
    assert media_duration(clip) == pytest.approx(2.0, abs=0.05)
    pcm = audio.load_pcm16(clip)  # AAC in MP4, decoded and resampled to 16 kHz mono
    assert abs(len(pcm) / 2 / 16000 - 2.0) < 0.05
