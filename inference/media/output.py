"""Media out: JPEG frames and MP4 files (H.264 + AAC, faststart) from generated frames."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from inference.media.audio import TARGET_RATE


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """One RGB frame to JPEG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


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
