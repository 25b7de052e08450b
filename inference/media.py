"""Media in and out: image decode (EXIF orientation, limits), audio decode + resample to 16 kHz
mono, streaming PCM16 resampling, JPEG frame encoding and MP4 (H.264 + AAC, faststart) muxing.

Every decoder turns a failure into BadInput / UnsupportedMedia / TooLarge with a message the
client can act on; nothing here trusts the input's own claims about its size.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from inference.errors import BadInput, TooLarge, UnsupportedMedia

TARGET_RATE = 16000
IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "HEIF", "MPO"}
IMAGE_REMEDY = "upload a PNG, JPEG, WebP or HEIC photo"
AUDIO_FORMATS = "wav, mp3, flac, ogg (vorbis/opus), m4a (aac/alac)"


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Decode PNG/JPEG/WebP/HEIC bytes to H x W x 3 uint8 RGB with EXIF orientation applied."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    from pillow_heif import register_heif_opener

    register_heif_opener()
    if not data:
        raise BadInput("the image is empty", IMAGE_REMEDY)
    if len(data) > max_bytes:
        raise TooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes}",
                       "send a smaller photo (512x512 is the output size)")
    try:
        picture = Image.open(io.BytesIO(data), formats=None)
    except UnidentifiedImageError:
        raise UnsupportedMedia("not an image in a supported format", IMAGE_REMEDY) from None
    except (OSError, ValueError, SyntaxError) as error:
        raise BadInput(f"the image is corrupt or truncated: {error}", "upload the file again") from None
    if picture.format not in IMAGE_FORMATS:
        raise UnsupportedMedia(f"image format {picture.format} is not supported", IMAGE_REMEDY)
    width, height = picture.size
    if width * height > max_pixels:
        raise TooLarge(f"the image has {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
                       "downscale the photo (the output is 512x512)")
    if width < 16 or height < 16:
        raise BadInput(f"the image is {width}x{height}; at least 16x16 is needed", "upload a real photo")
    try:
        upright: Image.Image = ImageOps.exif_transpose(picture)
        if upright.mode in ("P", "LA", "PA"):
            upright = upright.convert("RGBA")
        return np.asarray(upright.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        remedy = "the file may be truncated; upload it again"
        raise BadInput(f"the image could not be decoded: {error}", remedy) from None


def decode_audio(data: bytes, max_bytes: int, max_seconds: float) -> np.ndarray:
    """Decode an audio file (any rate, any channels) to float32 16 kHz mono in [-1, 1]."""
    import av

    if not data:
        raise BadInput("the audio is empty", f"upload {AUDIO_FORMATS}")
    if len(data) > max_bytes:
        raise TooLarge(f"the audio is {len(data)} bytes; the limit is {max_bytes}", "send a shorter clip")
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise UnsupportedMedia("the file has no audio stream", f"upload {AUDIO_FORMATS}")
            stream = container.streams.audio[0]
            _check_declared_duration(container, stream, max_seconds)
            samples, rate = _decode_stream(container, stream, max_seconds)
    except av.error.FFmpegError as error:
        raise UnsupportedMedia(f"not a readable audio file: {error}", f"upload {AUDIO_FORMATS}") from None
    if samples.size == 0:
        raise BadInput("the audio contains no samples", "send a clip of at least one video frame (40 ms)")
    return resample(samples, rate)


def _check_declared_duration(container: object, stream: object, max_seconds: float) -> None:
    duration = getattr(container, "duration", None)  # microseconds
    if duration is not None and duration / 1e6 > max_seconds + 1:
        raise TooLarge(f"the audio lasts {duration / 1e6:.0f} s; the limit is {max_seconds:.0f} s",
                       "split it into shorter clips or stream it over WS /v1/stream")


def _decode_stream(container: object, stream: object, max_seconds: float) -> tuple[np.ndarray, int]:
    import av

    rate = stream.rate or 0  # type: ignore[attr-defined]
    if rate <= 0:
        raise UnsupportedMedia("the audio stream has no sample rate", f"upload {AUDIO_FORMATS}")
    # Planar float at the source rate; channels are averaged here (as for streamed PCM), not by a
    # surround downmix matrix that can add channels up past full scale.
    to_float = av.AudioResampler(format="fltp", rate=rate)
    parts: list[np.ndarray] = []
    total, limit = 0, int((max_seconds + 1) * rate)
    for frame in container.decode(stream):  # type: ignore[attr-defined]
        for planar in to_float.resample(frame):
            part = planar.to_ndarray().mean(axis=0)
            parts.append(part)
            total += part.size
        if total > limit:
            raise TooLarge(f"the audio is longer than {max_seconds:.0f} s", "send a shorter clip")
    for planar in to_float.resample(None):
        parts.append(planar.to_ndarray().mean(axis=0))
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return np.nan_to_num(samples.astype(np.float32, copy=False)).clip(-1.0, 1.0), rate


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample float32 mono to 16 kHz with soxr (high quality)."""
    if rate == TARGET_RATE:
        return samples.astype(np.float32, copy=False)
    import soxr

    # Band-limiting can overshoot full scale by a little: the backends expect [-1, 1].
    return np.clip(np.asarray(soxr.resample(samples, rate, TARGET_RATE, quality="HQ"), dtype=np.float32), -1, 1)


class PcmResampler:
    """Streaming PCM16 (interleaved, any rate/channels) -> float32 16 kHz mono, chunk by chunk."""

    def __init__(self, rate: int, channels: int):
        import soxr

        self.channels = channels
        self.rate = rate
        self.leftover = b""
        self.stream = None
        if rate != TARGET_RATE:
            self.stream = soxr.ResampleStream(rate, TARGET_RATE, 1, dtype="float32")
        self.samples_in = 0

    def push(self, pcm: bytes, last: bool = False) -> np.ndarray:
        """Resample the next bytes (any length; a partial sample is kept for the next call)."""
        data = self.leftover + pcm
        frame_bytes = 2 * self.channels
        usable = len(data) // frame_bytes * frame_bytes
        self.leftover = data[usable:]
        ints = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, self.channels)
        mono = (ints.astype(np.float32).mean(axis=1) / 32768.0).astype(np.float32)
        self.samples_in += len(mono)
        if self.stream is None:
            return mono
        return np.clip(np.asarray(self.stream.resample_chunk(mono, last=last), dtype=np.float32), -1, 1)

    def expected_output(self) -> int:
        """16 kHz samples that the input so far corresponds to (ceil)."""
        return math.ceil(self.samples_in * TARGET_RATE / self.rate)


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
