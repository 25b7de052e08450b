"""Host JPEG: every frame shape the server can make encodes to a file that decodes to it; threads keep order."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from inference.media import JpegThreads, default_jpeg_threads, encode_jpeg


def _smooth(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth colour field (what JPEG is for): a ramp across, one down, and a flat channel set by the seed."""
    y, x = np.mgrid[0:height, 0:width]
    channels = [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, seed)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def _decoded(file: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(file))
    assert image.format == "JPEG" and image.mode == "RGB"
    return np.asarray(image)


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 700), width=st.integers(1, 700), seed=st.integers(0, 255),
       quality=st.integers(1, 100))
def test_every_shape_and_quality_round_trips_as_faithfully_as_pillow(height: int, width: int, seed: int,
                                                                     quality: int) -> None:
    frame = _smooth(height, width, seed)
    decoded = _decoded(encode_jpeg(frame, quality))
    assert decoded.shape == frame.shape
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    error, pillow_error = (np.abs(image.astype(int) - frame).mean() for image in (decoded, _decoded(buffer.getvalue())))
    assert error <= pillow_error * 1.1 + 0.5


def test_views_of_a_batch_encode_like_copies() -> None:
    batch = np.stack([_smooth(64, 96, seed) for seed in range(4)])
    views = [batch[1], batch[:, ::2][2], batch[3, :, ::-1], np.asfortranarray(batch[0])]
    for view in views:
        assert encode_jpeg(view, 85) == encode_jpeg(view.copy(order="C"), 85)


def test_files_match_pillow_at_the_same_quality_and_subsampling() -> None:
    frame = _smooth(512, 512, 7)
    ours = Image.open(io.BytesIO(encode_jpeg(frame, 85)))
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=85)
    pillow = Image.open(io.BytesIO(buffer.getvalue()))
    assert ours.quantization == pillow.quantization
    assert ours.layer == pillow.layer  # 4:2:0: the luma plane sampled 2x2, chroma 1x1


@pytest.mark.parametrize("threads", [1, 2, 3, 16])
def test_threads_keep_every_chunk_and_frame_in_order(threads: int) -> None:
    chunks = [(np.stack([_smooth(16, 24, chunk * 10 + frame) for frame in range(count)]) if count else
               np.empty((0, 16, 24, 3), np.uint8), quality)
              for chunk, (count, quality) in enumerate([(5, 85), (0, 90), (1, 30), (24, 85), (7, 100)])]
    encoder = JpegThreads(threads)
    try:
        files = encoder.encode(chunks)
    finally:
        encoder.close()
    assert [len(chunk_files) for chunk_files in files] == [5, 0, 1, 24, 7]
    for (frames, quality), chunk_files in zip(chunks, files, strict=True):
        assert chunk_files == [encode_jpeg(frame, quality) for frame in frames]


def test_default_threads_follow_the_cpus_this_process_may_use() -> None:
    assert default_jpeg_threads() == min(16, len(os.sched_getaffinity(0)))
