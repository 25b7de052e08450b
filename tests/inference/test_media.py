"""Media decoding and resampling on their own: orientation, modes, formats, exact sample counts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference import media
from inference.errors import BadInput, TooLarge
from inference.sessions import PcmInput
from tests.inference.conftest import encode_image, encoded_audio, face_image, speech_like, wav_bytes

LIMITS = {"max_bytes": 20 * 2**20, "max_pixels": 40_000_000}


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, 1), (8, 3)])
def test_exif_orientation_is_applied(orientation: int, turn: int) -> None:
    from PIL import Image

    upright = face_image(60, 90)
    stored = np.ascontiguousarray(np.rot90(upright, k=turn))
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = media.decode_image(encode_image(stored, "PNG", exif=exif.tobytes()), **LIMITS)
    assert decoded.shape == upright.shape
    assert tuple(decoded[2, 2]) == (255, 0, 0)  # the red marker is back in the top-left corner


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "LA", "I;16", "CMYK"])
def test_image_modes_become_rgb(mode: str) -> None:
    from PIL import Image

    picture = Image.fromarray(face_image(40, 40)).convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        picture = picture.convert("I;16")
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    import io

    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    decoded = media.decode_image(buffer.getvalue(), **LIMITS)
    assert decoded.shape == (40, 40, 3) and decoded.dtype == np.uint8


def test_image_limits() -> None:
    png = encode_image(face_image(100, 100), "PNG")
    with pytest.raises(TooLarge):
        media.decode_image(png, max_bytes=len(png) - 1, max_pixels=10**9)
    with pytest.raises(TooLarge):
        media.decode_image(png, max_bytes=10**9, max_pixels=9999)
    assert media.decode_image(png, max_bytes=len(png), max_pixels=10000).shape == (100, 100, 3)


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (22050, 2), (44100, 6), (96000, 2)])
def test_wav_any_rate_and_channels_to_16k_mono(rate: int, channels: int) -> None:
    samples = media.decode_audio(wav_bytes(speech_like(1.25, rate, channels), rate), 2**30, 600)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 20000) <= 1
    assert 0.2 < float(np.abs(samples).max()) <= 1.0


@pytest.mark.parametrize("suffix", ["mp3", "flac", "ogg", "m4a"])
def test_compressed_formats(tmp_path: Path, suffix: str) -> None:
    samples = media.decode_audio(encoded_audio(1.0, 48000, 2, suffix, tmp_path), 2**30, 600)
    assert 16000 <= samples.size <= 16000 + 2400  # codecs add up to ~100 ms of priming/padding
    assert float(np.abs(samples).max()) > 0.2


def test_audio_limits() -> None:
    clip = wav_bytes(speech_like(3.0), 16000)
    with pytest.raises(TooLarge):
        media.decode_audio(clip, 2**30, max_seconds=1.0)
    with pytest.raises(TooLarge):
        media.decode_audio(clip, max_bytes=1000, max_seconds=600)
    with pytest.raises(BadInput):
        media.decode_audio(wav_bytes(np.zeros((0, 1), np.int16), 16000), 2**30, 600)


@settings(max_examples=40, deadline=None)
@given(rate=st.sampled_from([8000, 11025, 16000, 22050, 24000, 44100, 48000]),
       channels=st.integers(1, 3), seconds=st.floats(0.01, 2.0),
       packets=st.lists(st.integers(1, 9000), min_size=1, max_size=8))
def test_streamed_pcm_gives_exact_sample_counts(rate: int, channels: int, seconds: float, packets: list[int]) -> None:
    """However the bytes are split, a segment yields exactly ceil(n * 16000 / rate) samples."""
    pcm = speech_like(seconds, rate, channels).tobytes()
    stream = PcmInput(rate, channels)
    out, offset, index = [], 0, 0
    while offset < len(pcm):
        size = packets[index % len(packets)]
        out.append(stream.push(pcm[offset:offset + size]))
        offset, index = offset + size, index + 1
    out.append(stream.end_segment())
    total = sum(part.size for part in out)
    frames_in = len(pcm) // (2 * channels)
    assert total == math.ceil(frames_in * 16000 / rate)
