"""Media decoding and resampling on their own: orientation, modes, formats, exact sample counts."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference import media
from inference.errors import BadInput, TooLarge
from inference.media import AudioLimits, ImageLimits
from inference.sessions import PcmInput
from tests.inference.conftest import encode_image, encoded_audio, face_image, speech_like, wav_bytes

IMAGE_LIMITS = ImageLimits(20 * 2**20, 40_000_000, 8.0)
AUDIO_LIMITS = AudioLimits(2**30, 600)


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, 1), (8, 3)])
def test_exif_orientation_is_applied(orientation: int, turn: int) -> None:
    from PIL import Image

    upright = face_image(60, 90)
    stored = np.ascontiguousarray(np.rot90(upright, k=turn))
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = media.decode_image(encode_image(stored, "PNG", exif=exif.tobytes()), IMAGE_LIMITS)
    assert decoded.pixels.shape == upright.shape and (decoded.width, decoded.height) == (60, 90)
    assert tuple(decoded.pixels[2, 2]) == (255, 0, 0)  # the red marker is back in the top-left corner


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
    decoded = media.decode_image(buffer.getvalue(), IMAGE_LIMITS)
    assert decoded.pixels.shape == (40, 40, 3) and decoded.pixels.dtype == np.uint8


def test_image_limits() -> None:
    png = encode_image(face_image(100, 100), "PNG")
    with pytest.raises(TooLarge, match=f"the limit is {len(png) - 1}"):
        media.decode_image(png, ImageLimits(len(png) - 1, 10**9, 8.0))
    with pytest.raises(TooLarge, match="the limit is 9999"):
        media.decode_image(png, ImageLimits(10**9, 9999, 8.0))
    assert media.decode_image(png, ImageLimits(len(png), 10000, 8.0)).pixels.shape == (100, 100, 3)
    tall = encode_image(face_image(16, 200), "PNG")
    with pytest.raises(BadInput, match="aspect ratio of 12.5:1; the limit is 8:1"):
        media.decode_image(tall, IMAGE_LIMITS)


@pytest.mark.parametrize(("width", "height", "fmt"), [(6000, 4000, "JPEG"), (3000, 1500, "PNG"), (700, 5600, "PNG"),
                                                      (600, 520, "JPEG"), (300, 200, "WEBP")])
def test_big_photos_come_out_just_covering_the_output(width: int, height: int, fmt: str) -> None:
    """The backend gets the photo with its short side at 512 (never more), whatever was uploaded."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 150, 120)).save(buffer, format=fmt)
    decoded = media.decode_image(buffer.getvalue(), IMAGE_LIMITS)
    assert (decoded.width, decoded.height) == (width, height)
    short, long = sorted(decoded.pixels.shape[:2])
    assert short == min(512, min(width, height))
    assert abs(long / short - max(width, height) / min(width, height)) < 0.02


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (22050, 2), (44100, 6), (96000, 2)])
def test_wav_any_rate_and_channels_to_16k_mono(rate: int, channels: int) -> None:
    samples = media.decode_audio(wav_bytes(speech_like(1.25, rate, channels), rate), AUDIO_LIMITS)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 20000) <= 1
    assert 0.2 < float(np.abs(samples).max()) <= 1.0


@pytest.mark.parametrize("suffix", ["mp3", "flac", "ogg", "m4a"])
def test_compressed_formats(tmp_path: Path, suffix: str) -> None:
    samples = media.decode_audio(encoded_audio(1.0, 48000, 2, suffix, tmp_path), AUDIO_LIMITS)
    assert 16000 <= samples.size <= 16000 + 2400  # codecs add up to ~100 ms of priming/padding
    assert float(np.abs(samples).max()) > 0.2


def test_audio_limits() -> None:
    clip = wav_bytes(speech_like(3.0), 16000)
    with pytest.raises(TooLarge, match="longer than 1 s"):
        media.decode_audio(clip, AudioLimits(2**30, max_seconds=1.0))
    with pytest.raises(TooLarge, match="the limit is 1000"):
        media.decode_audio(clip, AudioLimits(max_bytes=1000, max_seconds=600))
    with pytest.raises(TooLarge, match="3 channels; the limit is 2"):
        media.decode_audio(wav_bytes(speech_like(0.1, channels=3), 16000), AudioLimits(2**30, 600, max_channels=2))
    with pytest.raises(BadInput):
        media.decode_audio(wav_bytes(np.zeros((0, 1), np.int16), 16000), AUDIO_LIMITS)
    with pytest.raises(BadInput, match="less than one sample at 16 kHz"):
        media.decode_audio(wav_bytes(np.ones((1, 1), np.int16), 48000), AUDIO_LIMITS)


@pytest.mark.parametrize("channels", [1, 2, 6, 8, 9, 16, 33, 63, 64])
def test_any_channel_count_is_averaged_not_summed(channels: int) -> None:
    """The same tone on every channel decodes to that tone (no surround downmix past full scale)."""
    samples = media.decode_audio(wav_bytes(speech_like(0.5, 48000, channels), 48000), AUDIO_LIMITS)
    assert samples.size == 8000
    assert 0.38 < float(np.abs(samples).max()) < 0.42  # speech_like peaks at 0.4


def test_av_version_compatible_open_options() -> None:
    """PyAV < 19 needs metadata_errors='ignore' for non-UTF-8 tags; 19 removed the keyword."""
    import av

    from inference.media.audio import _open_options

    expected = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
    assert _open_options() == expected



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
