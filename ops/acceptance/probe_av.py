"""The same media facts as ffprobe/ffmpeg give, read with PyAV (the server extra's FFmpeg binding).

Used when the ffprobe/ffmpeg programs are not installed, so `flashhead demo` works right after
`pip install '.[server]'` on a machine without the ffmpeg package.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ops.acceptance.media import MediaFacts


def available() -> bool:
    """True when PyAV can be imported."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def probe(path: Path, facts: MediaFacts) -> MediaFacts:
    """Fill `facts` (container, streams, per-frame hashes) from PyAV; sets `facts.error` on failure."""
    import av

    try:
        with av.open(str(path)) as container:
            facts.format_name = container.format.name
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            facts.video = _video(video) if video is not None else {}
            facts.audio = {"codec_type": "audio", "codec_name": audio.codec_context.name} if audio else {}
            if video is not None:
                hashes = [_frame_hash(frame) for frame in container.decode(video=0)]
                facts.frames, facts.distinct_frames = len(hashes), len(set(hashes))
    except (av.FFmpegError, OSError, ValueError, IndexError) as error:
        facts.error = f"PyAV cannot read the file: {error}"
    return facts


def duration(path: Path) -> float | None:
    """Duration in seconds of any media file, or None when PyAV cannot read it."""
    import av

    try:
        with av.open(str(path)) as container:
            return None if container.duration is None else container.duration / av.time_base
    except (av.FFmpegError, OSError):
        return None


def _video(stream: Any) -> dict[str, Any]:
    context = stream.codec_context
    rate = stream.average_rate
    return {"codec_type": "video", "codec_name": context.name, "pix_fmt": context.pix_fmt,
            "width": context.width, "height": context.height,
            "avg_frame_rate": f"{rate.numerator}/{rate.denominator}" if rate else None}


def _frame_hash(frame: Any) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for plane in frame.planes:
        digest.update(bytes(plane))
    return digest.hexdigest()
