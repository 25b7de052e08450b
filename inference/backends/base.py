"""The Backend protocol: what the server needs from a talking-head model.

Threading: the server calls every method except `info`, `memory_stats` and `geometry` from ONE
worker thread that owns the model, so an implementation needs no locks around the model (the calls
`start_chunks` and `start_jpeg_chunks` return run on a second thread, and touch no model or stream
state). Streams are independent: a backend keeps per-stream state (reference latent, motion latents,
audio ring buffer, RNG) in the objects returned by `prepare_avatar` and `new_stream`, and swaps that
state in and out of its one shared model inside `encode_audio` / `generate_chunk`.

The unit of work is a chunk. Per chunk the scheduler calls
    encode_audio(stream, samples)   # exactly geometry.samples_per_chunk float32 samples, 16 kHz mono
    generate_chunk(stream)          # -> geometry.new_frames frames for those samples
Several streams may be batched by one `generate_chunks([s1, s2, ...])` call after each of them had
its `encode_audio`; the default loops over `generate_chunk`. A backend that can JPEG-encode on its
device sets `encodes_jpeg`, and the server asks `start_jpeg_chunks` for the streams that want JPEG.
The server calls both in their two-step form, `start_chunks` / `start_jpeg_chunks`: the model's work on
the model thread, the copy or encoding when the call they return runs, on the server's output thread,
while the model thread computes the next batch.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Opaque to the server: whatever the backend returns, handed back to it unchanged.
AvatarState = Any
StreamState = Any


@dataclass(frozen=True)
class ChunkGeometry:
    """Frame and audio geometry of one generation call.

    FlashHead Lite: 33 frames per call, 9 motion frames carried over -> 24 new frames per chunk
    (0.96 s at 25 fps = 15360 samples at 16 kHz). Pro: 33 frames, 5 motion frames -> 28 new frames.
    """

    fps: int = 25
    width: int = 512
    height: int = 512
    frames_per_call: int = 33
    motion_frames: int = 9
    sample_rate: int = 16000

    @property
    def new_frames(self) -> int:
        """Frames a chunk adds to the output."""
        return self.frames_per_call - self.motion_frames

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    @property
    def samples_per_chunk(self) -> int:
        """Audio samples (16 kHz mono) consumed by one chunk."""
        return self.new_frames * self.samples_per_frame

    @property
    def chunk_seconds(self) -> float:
        return self.new_frames / self.fps

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "new_frames": self.new_frames, "samples_per_chunk": self.samples_per_chunk,
                "chunk_seconds": self.chunk_seconds}


LITE = ChunkGeometry(motion_frames=9)
PRO = ChunkGeometry(motion_frames=5)
GEOMETRIES: dict[str, ChunkGeometry] = {"lite": LITE, "pro": PRO}  # keyed by inference.backends.MODEL_TYPES


class Backend(abc.ABC):
    """A talking-head model behind the server. Subclass it; construct with `from_config`.

    Lifecycle: `from_config(config)` (cheap, validates paths) -> `load()` (heavy: weights to the
    device) -> `warm_up()` (compile / first pass; /readyz turns true after it) -> per-avatar and
    per-stream calls -> `close()` at shutdown. Errors a user can fix (missing repo, checkpoint,
    GPU) are raised as `inference.errors.BackendError(message, remedy)`.
    """

    name: str = "base"
    geometry: ChunkGeometry = LITE

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Any) -> Backend:
        """Build the backend from the server's `inference.config.ServerConfig` (no heavy work)."""

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model onto its device. Raise BackendError with a remedy when anything is missing."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Run the model once (compile, allocate) so the first real chunk is fast."""

    @abc.abstractmethod
    def prepare_avatar(self, image: np.ndarray) -> AvatarState:
        """Prepare a reference photo once (FlashHead: VAE-encode it).

        `image` is H x W x 3 uint8 RGB, orientation already applied, any size; the backend
        resizes/crops to its geometry. The result may be shared by many streams: do not mutate it.
        """

    @abc.abstractmethod
    def new_stream(self, avatar: AvatarState, seed: int) -> StreamState:
        """Start a stream on `avatar`: fresh motion state, empty audio context, RNG from `seed`."""

    @abc.abstractmethod
    def encode_audio(self, stream: StreamState, samples: np.ndarray) -> None:
        """Feed the next chunk of audio: float32 in [-1, 1], 16 kHz mono, shape (samples_per_chunk,).

        The backend appends it to the stream's audio context (FlashHead: an 8 s ring buffer
        re-encoded by wav2vec2) and keeps what the next `generate_chunk` needs.
        """

    @abc.abstractmethod
    def generate_chunk(self, stream: StreamState) -> np.ndarray:
        """Generate the frames for the audio last fed: (new_frames, height, width, 3) uint8 RGB."""

    def generate_chunks(self, streams: list[StreamState]) -> list[np.ndarray]:
        """Generate one chunk for each stream (each had its `encode_audio`). Same order as `streams`.

        Override to batch several streams into one forward pass; the default runs them one by one.
        """
        return [self.generate_chunk(stream) for stream in streams]

    def start_chunks(self, streams: list[StreamState]) -> Callable[[], list[np.ndarray]]:
        """`generate_chunks` in two steps: the chunks now, on the model thread; the frames when the returned call
        runs, on the server's output thread, beside the next batch (a GPU backend copies them to the host there).
        That call may touch no stream state, only what it holds. The default does all of it now."""
        frames = self.generate_chunks(streams)
        return lambda: frames

    @property
    def encodes_jpeg(self) -> bool:
        """True when `generate_jpeg_chunks` works (the backend encodes on its device, off the host CPU)."""
        return False

    def generate_jpeg_chunks(self, streams: list[StreamState], quality: int) -> list[list[bytes]]:
        """`generate_chunks`, each frame returned as a JPEG file of `quality`. Only when `encodes_jpeg`."""
        raise NotImplementedError(f"the {self.name} backend does not encode JPEG")

    def start_jpeg_chunks(self, streams: list[StreamState], quality: int) -> Callable[[], list[list[bytes]]]:
        """`generate_jpeg_chunks` in two steps: the chunks now, on the model thread; their files when the returned
        call runs, on another thread, beside the next batch. That call may touch no stream state, only what it
        holds. The default does all of it now."""
        files = self.generate_jpeg_chunks(streams, quality)
        return lambda: files

    def clear_audio(self, stream: StreamState) -> None:  # noqa: B027 - optional hook
        """Forget the stream's audio context (after an interrupt); motion state is kept."""

    def close_stream(self, stream: StreamState) -> None:  # noqa: B027 - optional hook
        """Free per-stream resources (device memory) at once; called when a stream ends or drops."""

    def release_avatar(self, avatar: AvatarState) -> None:  # noqa: B027 - optional hook
        """Free an avatar evicted from the cache or deleted."""

    def info(self) -> dict[str, Any]:
        """Facts for /v1/info: at least backend, model_type, versions (name -> version), device."""
        return {"backend": self.name, "model_type": None, "versions": {}, "device": "cpu"}

    def memory_stats(self) -> dict[str, float] | None:
        """Device memory in bytes (`used`, `total`, `reserved`) for metrics; None without a GPU."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model at shutdown."""
