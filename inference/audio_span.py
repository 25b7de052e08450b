"""Which input audio each frame shows: sample offsets at the client's rate (protocol 2's frame spans).

A segment of N client samples at rate R gives ceil(N * fps / R) frames; frame g of the segment
shows samples [g * R // fps, (g + 1) * R // fps) from the segment's origin, the last frame ending
at N, so the spans of a segment tile its audio exactly, whatever R is (integer arithmetic, no drift).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AudioSpan:
    """Where a chunk's frames sit in the client's audio."""

    origin: int  # client samples (per channel) received before the segment began
    first_frame: int  # the chunk's first frame, counted within the segment
    rate: int  # the client's sample rate
    fps: int
    total: int | None = None  # the segment's client samples, known once the segment ended
    idle: bool = False  # frames of silence: empty spans at `origin`

    def frame(self, offset: int) -> tuple[int, int]:
        """[start, end) of the chunk's frame number `offset`."""
        if self.idle:
            return self.origin, self.origin
        number = self.first_frame + offset
        start = self.origin + number * self.rate // self.fps
        end = self.origin + (number + 1) * self.rate // self.fps
        if self.total is not None:
            end = min(end, self.origin + self.total)
        return start, end
