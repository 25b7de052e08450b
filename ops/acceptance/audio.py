"""Audio for streaming: any file to 16 kHz mono PCM16, looped or cut to a duration."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

from ops.errors import UsageError

SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2


def load_pcm16(path: Path, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono little-endian PCM16 at `sample_rate`: read directly from a matching WAV, else via ffmpeg."""
    if not path.is_file():
        raise UsageError(f"audio file {path} does not exist", "pass --audio PATH to a WAV/MP3/FLAC/OGG/M4A file")
    try:
        with wave.open(str(path), "rb") as reader:
            if (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, sample_rate):
                return reader.readframes(reader.getnframes())
    except (wave.Error, EOFError):
        pass  # not a plain PCM WAV: let ffmpeg decode it
    return _decode_with_ffmpeg(path, sample_rate)


def fit_to_duration(pcm: bytes, seconds: float, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Repeat (or cut) `pcm` to exactly `seconds` of audio."""
    if not pcm:
        raise UsageError("the audio file holds no samples", "pass a file with a few seconds of speech")
    wanted = int(round(seconds * sample_rate)) * BYTES_PER_SAMPLE
    repeats = -(-wanted // len(pcm))
    return (pcm * repeats)[:wanted]


def duration_s(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> float:
    return len(pcm) / BYTES_PER_SAMPLE / sample_rate


def _decode_with_ffmpeg(path: Path, sample_rate: int) -> bytes:
    from ops.acceptance.media import has_ffmpeg, require_tools

    require_tools()
    if not has_ffmpeg():
        return _decode_with_pyav(path, sample_rate)
    result = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vn", "-ac", "1",
                             "-ar", str(sample_rate), "-f", "s16le", "-"], capture_output=True, timeout=300,
                            check=False)
    if result.returncode != 0 or not result.stdout:
        message = result.stderr.decode(errors="replace").strip()[:300] or "no audio decoded"
        raise UsageError(f"cannot decode audio {path}: {message}", "pass a WAV, MP3, FLAC, OGG or M4A file")
    return result.stdout


def _decode_with_pyav(path: Path, sample_rate: int) -> bytes:
    import av

    try:
        with av.open(str(path)) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
            chunks = [out.to_ndarray().tobytes() for frame in container.decode(audio=0)
                      for out in resampler.resample(frame)]
            chunks += [out.to_ndarray().tobytes() for out in resampler.resample(None)]
    except (av.FFmpegError, OSError, IndexError) as error:
        raise UsageError(f"cannot decode audio {path}: {error}", "pass a WAV, MP3, FLAC, OGG or M4A file") from None
    if not chunks:
        raise UsageError(f"cannot decode audio {path}: no audio stream", "pass a file with speech in it")
    return b"".join(chunks)
