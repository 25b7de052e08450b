"""Media out: JPEG frames and MP4 files (H.264 + AAC, faststart) from generated frames."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from inference.media.audio import TARGET_RATE


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """One (H, W, 3) uint8 RGB frame to a baseline JPEG file with 4:2:0 chroma (as Pillow and nvJPEG write).

    libjpeg-turbo through simplejpeg releases the GIL for the encode itself, so threads scale with the cores;
    Pillow holds it for part of each encode and did not (docs/gpu.md, "Host JPEG on the CPU")."""
    import simplejpeg

    return simplejpeg.encode_jpeg(np.ascontiguousarray(frame), quality=quality, colorspace="RGB",
                                  colorsubsampling="420")


class JpegThreads:
    """Encodes the frames of a batch's chunks in `threads` threads, each thread one contiguous slice of them.

    Beside a busy Python thread (the model's), each encode waits for the GIL to hand back its file: on the
    H200 host 16 threads encoded a B = 16 chunk (384 frames) in 212-232 ms, 1 thread in 2.3-2.7 s
    (benchmarks/host_jpeg.py, docs/gpu.md)."""

    def __init__(self, threads: int):
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="jpeg")

    def encode(self, chunks: Sequence[tuple[np.ndarray, int]]) -> list[list[bytes]]:
        """Each (frames, quality) chunk as its list of JPEG files, in order."""
        frames = [(frame, quality) for chunk, quality in chunks for frame in chunk]
        size = -(-len(frames) // self.threads) or 1
        slices = [frames[start: start + size] for start in range(0, len(frames), size)]
        files = iter([encoded for part in self.pool.map(_encode_slice, slices) for encoded in part])
        return [[next(files) for _ in chunk] for chunk, _ in chunks]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _encode_slice(frames: list[tuple[np.ndarray, int]]) -> list[bytes]:
    return [encode_jpeg(frame, quality) for frame, quality in frames]


def default_jpeg_threads() -> int:
    """One per CPU this process may run on, at most 16 (the most measured)."""
    return max(1, min(16, len(os.sched_getaffinity(0))))


class Mp4Writer:
    """Incremental MP4 writer: H.264 yuv420p video at `fps` + AAC audio, moov atom up front.

    Frames and their audio are added chunk by chunk (bounded memory for long clips). `finish`
    trims nothing: the caller passes exactly the frames that cover the audio.
    """

    def __init__(self, fps: int, width: int, height: int, audio_rate: int = TARGET_RATE):
        import av

        fd, name = tempfile.mkstemp(prefix="flashhead-", suffix=".mp4")
        os.close(fd)
        self.path = Path(name)
        self.audio_rate = audio_rate
        self.container = av.open(name, mode="w", format="mp4", options={"movflags": "+faststart"})
        self.video = self.container.add_stream("libx264", rate=fps)
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        self.video.options = {"preset": "veryfast", "crf": "20"}
        self.video.time_base = Fraction(1, fps)
        self.audio = self.container.add_stream("aac", rate=audio_rate)
        self.audio.layout = "mono"
        self.audio.time_base = Fraction(1, audio_rate)
        self.frames = 0
        self.audio_samples = 0

    def add(self, frames: np.ndarray, audio: np.ndarray) -> None:
        """Append video frames (N x H x W x 3 uint8) and the audio samples they cover."""
        import av

        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = self.frames
            self.frames += 1
            self.container.mux(self.video.encode(video_frame))
        if audio.size:
            audio_frame = av.AudioFrame.from_ndarray(audio.astype(np.float32).reshape(1, -1), format="flt",
                                                     layout="mono")
            audio_frame.sample_rate = self.audio_rate
            audio_frame.pts = self.audio_samples
            self.audio_samples += audio.size
            self.container.mux(self.audio.encode(audio_frame))

    def finish(self) -> bytes:
        """Flush the encoders, write the file and return its bytes (the temp file is removed)."""
        try:
            self.container.mux(self.video.encode(None))
            self.container.mux(self.audio.encode(None))
            self.container.close()
            return self.path.read_bytes()
        finally:
            self.discard()

    def discard(self) -> None:
        """Abandon the file (client gone, error)."""
        # Closing a half-written container may fail; the file goes anyway.
        with contextlib.suppress(Exception):
            self.container.close()
        self.path.unlink(missing_ok=True)
