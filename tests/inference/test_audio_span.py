"""Frame spans tile a segment's audio exactly at any client rate (protocol 2's A/V pairing)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from inference.audio_span import AudioSpan

CHUNK_FRAMES = 24


@settings(max_examples=400, deadline=None)
@given(rate=st.integers(8000, 192000), samples=st.integers(1, 200_000), origin=st.integers(0, 10**9))
def test_a_segments_frames_tile_its_audio(rate: int, samples: int, origin: int) -> None:
    frames = math.ceil(samples * 25 / rate)
    spans = []
    for first in range(0, frames, CHUNK_FRAMES):
        last_chunk = first + CHUNK_FRAMES >= frames
        span = AudioSpan(origin, first, rate, 25, samples if last_chunk else None)
        spans += [span.frame(offset) for offset in range(min(CHUNK_FRAMES, frames - first))]
    assert spans[0][0] == origin and spans[-1][1] == origin + samples
    assert all(start < end for start, end in spans)  # every frame shows some audio
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # no gap, no overlap
    # Each frame starts within one sample of its presentation time.
    assert all(abs((start - origin) / rate - number / 25) < 1 / rate for number, (start, _) in enumerate(spans))


def test_idle_frames_show_no_audio() -> None:
    span = AudioSpan(4800, 0, 48000, 25, idle=True)
    assert [span.frame(offset) for offset in range(3)] == [(4800, 4800)] * 3
