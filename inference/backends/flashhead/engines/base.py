"""What an engine works on (a loaded FlashHead, per-avatar and per-stream state) and what it must do.

An engine turns one chunk of each stream's audio into frames. The backend owns the streams and
FlashHead's pipeline; the engine owns how a chunk is computed. Both engines keep every stream's
state in its `FlashheadStream`, never on FlashHead's global pipeline between chunks.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from inference.backends.flashhead.engines import DEFAULT_COMPILE_SCOPE, DEFAULT_DIT_DTYPE


class FlashheadModule(Protocol):
    """FlashHead's `flash_head.inference` module: the functions its own scripts call."""

    def get_pipeline(self, world_size: int, ckpt_dir: str, model_type: str, wav2vec_dir: str) -> Any: ...

    def get_base_data(self, pipeline: Any, cond_image_path_or_dir: str, base_seed: int,
                      use_face_crop: bool) -> None: ...

    def get_infer_params(self) -> dict[str, Any]: ...

    def get_audio_embedding(self, pipeline: Any, audio_array: np.ndarray, audio_start_idx: int = -1,
                            audio_end_idx: int = -1) -> Any: ...

    def run_pipeline(self, pipeline: Any, audio_embedding: Any) -> Any: ...


@dataclass(frozen=True)
class LoadedFlashhead:
    """FlashHead as loaded for one model type: its module, its pipeline object and its chunk parameters."""

    module: FlashheadModule
    pipeline: Any  # FlashHeadPipeline: FlashHead's class, untyped
    params: Mapping[str, Any]  # FlashHead's infer_params (frame_num, motion_frames_num, tgt_fps, ...)
    model_type: str


@dataclass(frozen=True)
class EngineSettings:
    """The server settings an engine reads."""

    compile: bool = False
    cuda_graphs: bool = True  # compiled fast engine: the DiT replays as CUDA graphs
    jpeg_on_device: bool = True  # fast engine: nvJPEG when torchvision has it
    compile_scope: str = DEFAULT_COMPILE_SCOPE  # compiled fast engine: "blocks" (one block, reused) or "model"
    dit_dtype: str = DEFAULT_DIT_DTYPE  # the DiT blocks' linear layers: "bf16" (FlashHead's) or "fp8" (engines/fp8.py)


@dataclass
class FlashheadAvatar:
    """A prepared reference photo: its name in the pipeline, colour reference and VAE latent."""

    name: str
    color_reference: Any  # 1 x 3 x 1 x H x W in [-1, 1], FlashHead's `cond_image_tensor`
    latent: Any  # C x F x h x w, FlashHead's `ref_img_latent`
    image: Any  # the PIL image FlashHead's dicts hold


@dataclass
class FlashheadStream:
    """One stream's state, handed to the engine for each of its chunks."""

    avatar: FlashheadAvatar
    seed: int
    generator: Any  # the sampler's noise (torch.Generator on the pipeline's device)
    motion: Any  # latent motion frames carried to the next chunk
    ring: np.ndarray  # the last `cached_audio_duration` seconds of 16 kHz audio, float32
    rng_state: Any = None  # pipeline engine: the device RNG state FlashHead's VAE sampling draws from
    vae_generator: Any = None  # fast engine: the VAE posterior sample's generator
    embedding: Any = None  # pipeline engine: the audio embedding of the chunk fed last
    audio_fed: bool = False  # a chunk of audio arrived since the last generated chunk
    chunks: int = 0


class Engine(Protocol):
    """Runs chunks for the backend. Called from the server's one model thread only."""

    name: str
    cuda_graphs: bool  # the compiled DiT replays as CUDA graphs
    encodes_jpeg: bool  # `start_jpeg` works (frames are JPEG-encoded on the device)

    def new_stream(self, stream: FlashheadStream) -> None:
        """Set up the engine's per-stream state (generators) for a fresh stream."""

    def encode_audio(self, stream: FlashheadStream) -> None:
        """The stream's ring holds a new chunk of audio: encode it now or with the batch."""

    def generate(self, streams: list[FlashheadStream]) -> list[np.ndarray]:
        """One chunk per stream: (new_frames, H, W, 3) uint8 frames on the host."""

    def start_frames(self, streams: list[FlashheadStream]) -> Callable[[], list[np.ndarray]]:
        """One chunk per stream now; the returned call (safe on another thread) gives the host frames."""

    def start_jpeg(self, streams: list[FlashheadStream], quality: int) -> Callable[[], list[list[bytes]]]:
        """One chunk per stream now; the returned call (safe on another thread) gives each frame as a JPEG file.
        Only when `encodes_jpeg`."""

    def warm_up_sizes(self, max_batch: int) -> list[int]:
        """The batch sizes warm-up must run so no served chunk pays a compile or a graph recording."""


def require_audio(streams: list[FlashheadStream]) -> None:
    """Refuse a chunk for a stream that had no audio since its last chunk (a scheduler bug)."""
    for stream in streams:
        if not stream.audio_fed:
            raise RuntimeError("generate_chunk before encode_audio")


def to_uint8_frames(video: Any) -> np.ndarray:
    """FlashHead's frames (T x H x W x 3, float 0..255, on its device) as host uint8, truncating as its writer does."""
    import torch

    return video.detach().to(torch.uint8).cpu().numpy()


def fresh_rng_state(device: str, seed: int) -> Any:
    """The state of a generator on `device` seeded with `seed` (what FlashHead's global RNG would hold)."""
    import torch

    return torch.Generator(device=device).manual_seed(seed).get_state()


@contextlib.contextmanager
def device_rng(stream: FlashheadStream, device: str) -> Iterator[None]:
    """Swap the stream's RNG state into the device's global RNG (FlashHead's VAE sampling uses it)."""
    import torch

    cuda = str(device).startswith("cuda")
    saved = torch.cuda.get_rng_state() if cuda else torch.get_rng_state()
    (torch.cuda.set_rng_state if cuda else torch.set_rng_state)(stream.rng_state)
    try:
        yield
    finally:
        stream.rng_state = torch.cuda.get_rng_state() if cuda else torch.get_rng_state()
        (torch.cuda.set_rng_state if cuda else torch.set_rng_state)(saved)


@contextlib.contextmanager
def seeded_global_rng(device: str, seed: int) -> Iterator[None]:
    """Torch's global RNG seeded for the block and restored after: the same photo gives the same latent."""
    if "torch" not in sys.modules:
        yield
        return
    import torch

    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
