"""The `reference` backend: CPU, no neural network, for CI, demos and server capacity tests.

It renders the reference photo at the backend's geometry (512x512) with the face's own lips
(found in the photo, see mouth.py) parting with the audio's per-frame energy, so a viewer can see
the mouth follow the speech. Deterministic:
the same photo, audio and seed give the same frames. `FLASHHEAD_REFERENCE_CHUNK_MS` adds a fixed
compute time per chunk to emulate a GPU model in scheduling and capacity tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.backends.base import LITE, PRO, Backend, ChunkGeometry
from inference.backends.mouth import MouthAnimator, find_mouth
from inference.errors import BadInput


@dataclass(frozen=True)
class ReferenceAvatar:
    """The photo resized and centre-cropped to the output size, and its mouth's animation."""

    image: np.ndarray  # H x W x 3 uint8, read-only
    animator: MouthAnimator


@dataclass
class ReferenceStream:
    """Per-stream state: the avatar, the last mouth opening (smoothing), the pending audio."""

    avatar: ReferenceAvatar
    rng: np.random.Generator
    openness: float = 0.0
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    chunks: int = 0


class ReferenceBackend(Backend):
    """A deterministic CPU renderer with FlashHead's chunk geometry."""

    name = "reference"

    def __init__(self, geometry: ChunkGeometry = LITE, chunk_ms: float = 0.0, model_type: str = "lite"):
        self.geometry = geometry
        self.chunk_seconds = chunk_ms / 1000.0
        self.model_type = model_type
        self.loaded = False

    @classmethod
    def from_config(cls, config: Any) -> ReferenceBackend:
        geometry = PRO if config.model_type == "pro" else LITE
        return cls(geometry, config.reference_chunk_ms, config.model_type)

    def load(self) -> None:
        self.loaded = True

    def warm_up(self) -> None:
        stream = self.new_stream(self.prepare_avatar(np.full((64, 64, 3), 128, np.uint8)), seed=0)
        self.encode_audio(stream, np.zeros(self.geometry.samples_per_chunk, np.float32))
        self.generate_chunk(stream)

    def prepare_avatar(self, image: np.ndarray) -> ReferenceAvatar:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise BadInput(f"expected an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
        fitted = fit_square(image, self.geometry.width, self.geometry.height)
        fitted.setflags(write=False)
        return ReferenceAvatar(fitted, MouthAnimator(fitted, find_mouth(fitted)))

    def new_stream(self, avatar: ReferenceAvatar, seed: int) -> ReferenceStream:
        return ReferenceStream(avatar, np.random.default_rng(seed))

    def encode_audio(self, stream: ReferenceStream, samples: np.ndarray) -> None:
        if samples.shape != (self.geometry.samples_per_chunk,):
            raise ValueError(f"expected {self.geometry.samples_per_chunk} samples, got {samples.shape}")
        stream.pending = samples.astype(np.float32, copy=False)

    def generate_chunk(self, stream: ReferenceStream) -> np.ndarray:
        started = time.perf_counter()
        energies = frame_energies(stream.pending, self.geometry.samples_per_frame)
        frames = np.empty((len(energies), self.geometry.height, self.geometry.width, 3), np.uint8)
        for i, energy in enumerate(energies):
            # Attack fast, release slower: looks like speech rather than flicker.
            target = min(1.0, energy * 6.0)
            rate = 0.7 if target > stream.openness else 0.35
            stream.openness += (target - stream.openness) * rate
            stream.avatar.animator.render(stream.openness, frames[i])
        stream.chunks += 1
        remaining = self.chunk_seconds - (time.perf_counter() - started)
        if remaining > 0:
            time.sleep(remaining)
        return frames

    def clear_audio(self, stream: ReferenceStream) -> None:
        stream.pending = np.zeros(0, dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model_type": self.model_type, "device": "cpu",
                "versions": {"numpy": np.__version__},
                "emulated_chunk_ms": self.chunk_seconds * 1000.0}


def frame_energies(samples: np.ndarray, samples_per_frame: int) -> np.ndarray:
    """RMS energy of each video frame's slice of audio."""
    frames = samples[: len(samples) // samples_per_frame * samples_per_frame].reshape(-1, samples_per_frame)
    return np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))


def fit_square(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to cover width x height and centre-crop (the photo is not distorted)."""
    from PIL import Image

    picture = Image.fromarray(image)
    scale = max(width / picture.width, height / picture.height)
    size = (max(width, round(picture.width * scale)), max(height, round(picture.height * scale)))
    picture = picture.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return np.array(picture.crop((left, top, left + width, top + height)), dtype=np.uint8)
