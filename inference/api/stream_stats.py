"""Counters and timings of one WebSocket stream: the numbers in `stats`, `playback` and `summary`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamStats:
    frames_sent: int = 0
    chunks_sent: int = 0
    idle_chunks: int = 0
    generation_s: list[float] = field(default_factory=list)
    queue_s: list[float] = field(default_factory=list)
    first_audio_at: float | None = None  # time.monotonic() of the first audio byte received
    first_frame_at: float | None = None  # ... and of the first frame sent

    def chunk_sent(self, generation_s: float, queue_s: float, idle: bool) -> None:
        self.chunks_sent += 1
        self.idle_chunks += int(idle)
        self.generation_s.append(generation_s)
        self.queue_s.append(queue_s)

    @property
    def ttff_s(self) -> float | None:
        """First audio received to first frame sent."""
        if self.first_frame_at is None or self.first_audio_at is None:
            return None
        return self.first_frame_at - self.first_audio_at

    def summary(self, fps: int, audio_seconds: float, interrupts: int) -> dict[str, Any]:
        """The fields of the final `summary` message (without type and stream id)."""
        generation = sorted(self.generation_s)
        busy = sum(generation)
        elapsed = time.monotonic() - self.first_audio_at if self.first_audio_at else 0.0
        return {
            "frames": self.frames_sent, "chunks": self.chunks_sent, "idle_chunks": self.idle_chunks,
            "audio_seconds": round(audio_seconds, 3), "video_seconds": round(self.frames_sent / fps, 3),
            "interrupts": interrupts,
            "ttff_ms": _ms(self.ttff_s),
            "stream_fps": round(self.frames_sent / elapsed, 2) if elapsed > 0 else None,
            "generation_fps": round(self.frames_sent / busy, 2) if busy > 0 else None,
            "mean_generation_ms": _ms(busy / len(generation)) if generation else None,
            "p95_generation_ms": _ms(generation[int(0.95 * (len(generation) - 1))]) if generation else None,
            "mean_queue_ms": _ms(sum(self.queue_s) / len(self.queue_s)) if self.queue_s else None,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
