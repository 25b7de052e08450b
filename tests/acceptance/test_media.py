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


def verdicts(path: Path, duration_s: float | None = 2.0) -> dict[str, bool | None]:
    return {check.name: check.ok for check in check_mp4(probe_mp4(path), Expected(duration_s=duration_s))}


def test_a_clip_as_the_server_documents_it_passes_every_check(tmp_path: Path) -> None:
    results = verdicts(make_mp4(tmp_path / "good.mp4"))
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
def test_each_defect_fails_its_own_check(tmp_path: Path, options: dict, failing: str) -> None:
    results = verdicts(make_mp4(tmp_path / "clip.mp4", **options))
    assert results[failing] is False
    others = {name: ok for name, ok in results.items() if name != failing}
    assert all(others.values()), others


def test_duration_within_one_frame_passes_and_shows_the_difference(tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "clip.mp4", seconds=2.0)
    checks = {c.name: c for c in check_mp4(probe_mp4(clip), Expected(duration_s=2.03))}
    assert checks["mp4.duration"].ok is True
    assert checks["mp4.duration"].measured["difference_s"] == pytest.approx(0.03, abs=0.001)
    checks = {c.name: c for c in check_mp4(probe_mp4(clip), Expected(duration_s=2.05))}
    assert checks["mp4.duration"].ok is False
    assert "Δ 0.050 s" in checks["mp4.duration"].detail


def test_garbage_is_reported_as_unreadable_with_ffprobes_reason(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not an mp4 at all" * 100)
    checks = check_mp4(probe_mp4(garbage), Expected(duration_s=2.0))
    assert [c.name for c in checks] == ["mp4.readable"]
    assert checks[0].ok is False
    assert "ffprobe cannot read the file" in checks[0].detail
    assert checks[0].remedy


def test_a_truncated_clip_fails(tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "clip.mp4", faststart=False)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])  # the moov box (at the end) is cut off
    results = verdicts(clip)
    assert results["mp4.readable"] is False


def test_media_duration_reads_the_shipped_speech() -> None:
    from ops.acceptance.assets import SPEECH_WAV

    assert 3.0 < media_duration(SPEECH_WAV) < 10.0
