"""The `flashhead` backend: an adapter over the cloned SoulX-FlashHead repository and its checkpoints.

FlashHead keeps one stream's state on one global pipeline object (reference latent, motion latents,
RNG) and an 8 s audio `deque` in its scripts. Here that state lives per stream
(`FlashheadStream`): a float32 ring buffer of the last 8 s, the motion latents carried between
chunks, a generator of its own and the CUDA RNG state that FlashHead's VAE sampling draws from.
The backend swaps it into the one shared pipeline for each chunk, so a second stream never
disturbs the first.

Two engines run a chunk:
- `pipeline`: FlashHead's own per-chunk API (`get_audio_embedding` + `run_pipeline`), one stream
  at a time, exactly as its streaming script does.
- `fast` (default on a GPU; flashhead_engine.py): the same modules and weights, with the host-side
  overheads removed and the chunks of several streams batched into one forward pass.

`weights: random` (FLASHHEAD_WEIGHTS=random) builds the real architecture with random parameters:
a capacity probe for a host whose checkpoints are not there yet. Frames are noise; timing is the
model's. /v1/info says so.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.backends.base import LITE, PRO, Backend, ChunkGeometry
from inference.errors import BackendError, BadInput

CHECKPOINT_REPO = "SoulX-FlashHead-1_3B"
WAV2VEC_DIR = "wav2vec2-base-960h"
MODEL_DIRS = {"lite": ("Model_Lite", "VAE_LTX"), "pro": ("Model_Pro", "VAE_Wan")}
_IMPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class FlashheadPaths:
    """Where the cloned repository, the checkpoints and the compile caches are."""

    repo: Path
    checkpoints: Path  # holds Model_Lite/ VAE_LTX/ (or Model_Pro/ VAE_Wan/)
    wav2vec: Path
    compile_cache: Path

    @classmethod
    def from_config(cls, config: Any) -> FlashheadPaths:
        root = Path(config.model_root)
        models = Path(config.checkpoint_dir) if getattr(config, "checkpoint_dir", None) else root / "models"
        repo = Path(config.repo_dir) if getattr(config, "repo_dir", None) else root / "SoulX-FlashHead"
        cache = getattr(config, "compile_cache_dir", None) or root / ".cache" / "torch-compile"
        return cls(repo, models / CHECKPOINT_REPO, models / WAV2VEC_DIR, Path(cache))

    def missing_checkpoints(self, model_type: str) -> list[str]:
        """Checkpoint folders (or their config.json) that are absent for `model_type`."""
        model_dir, vae_dir = MODEL_DIRS[model_type]
        wanted = [self.checkpoints / model_dir / "config.json", self.checkpoints / vae_dir,
                  self.wav2vec / "config.json"]
        return [str(path) for path in wanted if not path.exists()]


@dataclass
class FlashheadAvatar:
    """A prepared reference photo: its name in the pipeline, colour reference and VAE latent."""

    name: str
    color_reference: Any  # 1 x 3 x 1 x H x W in [-1, 1], FlashHead's `cond_image_tensor`
    latent: Any  # C x F x h x w, FlashHead's `ref_img_latent`
    image: Any  # the PIL image FlashHead's dicts hold


@dataclass
class FlashheadStream:
    """One stream's state, swapped into the shared pipeline for each of its chunks."""

    avatar: FlashheadAvatar
    seed: int
    generator: Any
    motion: Any  # latent motion frames carried to the next chunk
    ring: np.ndarray  # the last `cached_audio_duration` seconds of 16 kHz audio, float32
    rng_state: Any = None  # CUDA RNG state FlashHead's VAE sampling draws from (pipeline engine)
    embedding: Any = None  # audio embedding of the chunk fed last
    chunks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # engine-owned per-stream tensors


class FlashheadBackend(Backend):
    """SoulX-FlashHead behind the server's Backend protocol."""

    name = "flashhead"

    def __init__(self, paths: FlashheadPaths, model_type: str = "lite", device: str = "cuda",
                 compile: bool = False, weights: str = "checkpoints", engine: str = "auto", seed: int = 0,
                 max_batch: int = 1, cuda_graphs: bool = True, jpeg_on_device: bool = True):
        if weights not in ("checkpoints", "random"):
            raise BackendError(f"unknown weights mode {weights!r}", "use FLASHHEAD_WEIGHTS=checkpoints or random")
        self.paths = paths
        self.model_type = model_type
        self.device = device
        self.compile = compile
        self.weights = weights
        self.engine_name = engine
        self.seed = seed
        self.max_batch = max_batch
        self.cuda_graphs = cuda_graphs  # fast engine, compiled: the DiT replays as CUDA graphs
        self.jpeg_on_device = jpeg_on_device  # fast engine: nvJPEG when torchvision has it
        self.geometry: ChunkGeometry = PRO if model_type == "pro" else LITE
        self.pipeline: Any = None
        self.fh: Any = None  # the flash_head.inference module
        self.params: dict[str, Any] = {}
        self.engine: Any = None
        self.timings: dict[str, float] = {}
        self._avatars: dict[str, FlashheadAvatar] = {}
        self._counter = 0

    @classmethod
    def from_config(cls, config: Any) -> FlashheadBackend:
        return cls(FlashheadPaths.from_config(config), config.model_type, config.device, bool(config.compile),
                   config.weights, config.engine, config.seed, config.max_batch, config.cuda_graphs,
                   config.jpeg_on_device)

    # ---- start-up ------------------------------------------------------------------------------

    def check(self) -> None:
        """Fail with a remedy when the repository, a checkpoint or the GPU is missing."""
        if not (self.paths.repo / "flash_head" / "inference.py").is_file():
            raise BackendError(
                f"the SoulX-FlashHead repository is not at {self.paths.repo}",
                "run `flashhead provision` on this host, or set FLASHHEAD_REPO_DIR to the cloned repository")
        if self.weights == "checkpoints":
            missing = self.paths.missing_checkpoints(self.model_type)
            if missing:
                raise BackendError(
                    f"FlashHead {self.model_type} checkpoints are missing: {', '.join(missing)}",
                    "run `flashhead provision` (it downloads them), set FLASHHEAD_CHECKPOINT_DIR to the folder "
                    f"holding {CHECKPOINT_REPO}/ and {WAV2VEC_DIR}/, or set FLASHHEAD_WEIGHTS=random to probe "
                    "capacity without them (frames are noise)")
        if self.device.startswith("cuda"):
            self._check_gpu()

    def _check_gpu(self) -> None:
        try:
            import torch
        except ImportError as error:
            raise BackendError("torch is not installed in this environment",
                               "run `flashhead provision` (it installs the GPU stack into the host venv)") from error
        if not torch.cuda.is_available():
            raise BackendError("no CUDA GPU is visible to torch",
                               "check `nvidia-smi`, the pod's nvidia.com/gpu request, or set FLASHHEAD_DEVICE")

    def load(self) -> None:
        self.check()
        started = time.perf_counter()
        if self.compile:
            self._persist_compile_cache()
        self.fh = self._import_flashhead()
        pipeline_module: Any = sys.modules["flash_head.src.pipeline.flash_head_pipeline"]
        pipeline_module.COMPILE_MODEL = self.compile  # FlashHead's own switches, read by its constructor
        pipeline_module.COMPILE_VAE = self.compile
        build = dict(world_size=1, ckpt_dir=str(self.paths.checkpoints), model_type=self.model_type,
                     wav2vec_dir=str(self.paths.wav2vec))
        with self._random_weights():
            self.pipeline = self.fh.get_pipeline(**build)
        self.params = self.fh.get_infer_params()
        self._check_geometry()
        self.timings["load_s"] = time.perf_counter() - started
        self.engine = self._make_engine()

    def _import_flashhead(self) -> Any:
        repo = str(self.paths.repo)
        with _IMPORT_LOCK:
            if repo not in sys.path:
                sys.path.insert(0, repo)
            cwd = os.getcwd()
            os.chdir(repo)  # flash_head/inference.py reads configs/infer_params.yaml relative to the cwd
            try:
                return importlib.import_module("flash_head.inference")
            except ImportError as error:
                raise BackendError(f"cannot import FlashHead from {repo}: {error}",
                                   "install its requirements into this venv (`flashhead provision` does)") from error
            finally:
                os.chdir(cwd)

    def _random_weights(self) -> contextlib.AbstractContextManager[None]:
        if self.weights != "random":
            return contextlib.nullcontext()
        from inference.backends.flashhead_arch import random_weights

        return random_weights(self.model_type, self.device)

    def _persist_compile_cache(self) -> None:
        """Keep inductor's and Triton's caches under {model_root}: a restart skips the compile.

        Set, not defaulted: torch writes its default (/tmp/torchinductor_<user>) into the environment
        the first time it resolves the cache, so an inherited value must not win over the config
        (measured on the H100: a restart that inherited it recompiled everything, 180 s instead of 51 s).
        """
        for name, sub in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton")):
            path = self.paths.compile_cache / sub
            path.mkdir(parents=True, exist_ok=True)
            os.environ[name] = str(path)

    def _check_geometry(self) -> None:
        p = self.params
        motion = p.get("motion_frames_num")
        g = self.geometry
        if (p["frame_num"], motion, p["tgt_fps"], p["sample_rate"], p["height"], p["width"]) != (
                g.frames_per_call, g.motion_frames, g.fps, g.sample_rate, g.height, g.width):
            raise BackendError(
                f"FlashHead's chunk geometry ({p['frame_num']} frames, {motion} motion frames, {p['tgt_fps']} fps) "
                f"differs from the server's {self.model_type} geometry",
                "use the FlashHead commit pinned in playbooks/flashhead.yaml")

    def _make_engine(self) -> Any:
        name = self.engine_name
        if name == "auto":
            name = "fast" if self._is_torch_pipeline() else "pipeline"
        if name == "pipeline":
            return PipelineEngine(self)
        if name == "fast":
            from inference.backends.flashhead_engine import FastEngine

            return FastEngine(self)
        raise BackendError(f"unknown FlashHead engine {name!r}", "use FLASHHEAD_ENGINE=auto, fast or pipeline")

    def _is_torch_pipeline(self) -> bool:
        return "torch" in sys.modules and hasattr(getattr(self.pipeline, "model", None), "parameters")

    def warm_up(self) -> None:
        """Run two chunks alone (the second compiles the motion re-encode's shapes), then, when batching,
        two batched chunks (compiles the batch-dynamic graphs), so no real chunk pays a compile. With
        CUDA graphs every batch size up to max_batch runs twice (warm, then record)."""
        started = time.perf_counter()
        image = np.full((self.geometry.height, self.geometry.width, 3), 128, np.uint8)
        avatar = self.prepare_avatar(image)
        for size in self._warm_up_sizes():
            streams = [self.new_stream(avatar, seed=index) for index in range(size)]
            for _ in range(2):
                for stream in streams:
                    self.encode_audio(stream, np.zeros(self.geometry.samples_per_chunk, np.float32))
                self.generate_chunks(streams)
            for stream in streams:
                self.close_stream(stream)
            self.timings[f"warm_up_batch{size}_s"] = time.perf_counter() - started
        self.release_avatar(avatar)
        self.timings["warm_up_s"] = time.perf_counter() - started

    def _warm_up_sizes(self) -> list[int]:
        if self.engine.name != "fast" or self.max_batch == 1:
            return [1]
        if self.engine.cuda_graphs:
            return list(range(1, self.max_batch + 1))
        return [1, 2]

    # ---- avatars and streams -------------------------------------------------------------------

    def prepare_avatar(self, image: np.ndarray) -> FlashheadAvatar:
        """VAE-encode the photo with FlashHead's own `prepare_params` (resize, centre-crop, encode)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise BadInput(f"expected an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
        from PIL import Image

        self._counter += 1
        name = f"avatar{self._counter}"
        with tempfile.TemporaryDirectory(prefix="flashhead-avatar-") as folder:
            path = Path(folder) / f"{name}.png"
            Image.fromarray(image).save(path)
            with _seeded_global_rng(self.pipeline.device, self.seed):  # its VAE samples the posterior
                self.fh.get_base_data(self.pipeline, cond_image_path_or_dir=str(path), base_seed=self.seed,
                                      use_face_crop=False)
        p = self.pipeline
        avatar = FlashheadAvatar(name, p.cond_image_tensor_dict[name], p.ref_img_latent_dict[name],
                                 p.cond_image_dict[name])
        self._avatars[name] = avatar
        return avatar

    def release_avatar(self, avatar: FlashheadAvatar) -> None:
        self._avatars.pop(avatar.name, None)
        for table in ("cond_image_dict", "cond_image_tensor_dict", "ref_img_latent_dict"):
            getattr(self.pipeline, table, {}).pop(avatar.name, None)

    def new_stream(self, avatar: FlashheadAvatar, seed: int) -> FlashheadStream:
        p = self.pipeline
        # FlashHead's reset_person_name sets the initial motion latents from the avatar's latent.
        p.cond_image_dict[avatar.name] = avatar.image
        p.cond_image_tensor_dict[avatar.name] = avatar.color_reference
        p.ref_img_latent_dict[avatar.name] = avatar.latent
        p.reset_person_name(avatar.name)
        generator = type(p.generator)(device=p.device).manual_seed(seed)
        ring = np.zeros(self.params["sample_rate"] * self.params["cached_audio_duration"], np.float32)
        stream = FlashheadStream(avatar, seed, generator, p.latent_motion_frames, ring)
        stream.rng_state = _fresh_cuda_rng_state(p.device, seed)
        self.engine.new_stream(stream)
        return stream

    def encode_audio(self, stream: FlashheadStream, samples: np.ndarray) -> None:
        if samples.shape != (self.geometry.samples_per_chunk,):
            raise ValueError(f"expected {self.geometry.samples_per_chunk} samples, got {samples.shape}")
        ring = stream.ring
        ring[: -samples.size] = ring[samples.size:]
        ring[-samples.size:] = samples
        self.engine.encode_audio(stream)

    def generate_chunk(self, stream: FlashheadStream) -> np.ndarray:
        return self.generate_chunks([stream])[0]

    def generate_chunks(self, streams: list[FlashheadStream]) -> list[np.ndarray]:
        return self._generate(streams)

    @property
    def encodes_jpeg(self) -> bool:
        return getattr(self.engine, "jpeg", None) is not None

    def generate_jpeg_chunks(self, streams: list[FlashheadStream], quality: int) -> list[list[bytes]]:
        return self._generate(streams, jpeg_quality=quality)

    def _generate(self, streams: list[FlashheadStream], **options: Any) -> Any:
        result = self.engine.generate(streams, **options)
        for stream in streams:
            stream.chunks += 1
        return result

    def clear_audio(self, stream: FlashheadStream) -> None:
        stream.ring[:] = 0.0
        stream.embedding = None
        self.engine.clear_audio(stream)

    def close_stream(self, stream: FlashheadStream) -> None:
        stream.embedding = None
        stream.extra.clear()
        stream.motion = None

    # ---- facts ---------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "backend": self.name, "model_type": self.model_type, "device": self.device,
            "weights": self.weights, "compile": self.compile, "repo": str(self.paths.repo),
            "engine": getattr(self.engine, "name", self.engine_name), "versions": _versions(),
            "cuda_graphs": bool(getattr(self.engine, "cuda_graphs", False)), "jpeg_on_device": self.encodes_jpeg,
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }
        if self.weights == "random":
            facts["warning"] = ("WEIGHTS=RANDOM: capacity probe only. Frames are noise; timing is the real "
                                "model's. Provision the checkpoints before serving users.")
        if hasattr(self.engine, "capacity"):
            facts["capacity"] = self.engine.capacity()
        if self.compile and "torch" in sys.modules:
            facts["compile_cache"] = _compile_cache_counters()
        return facts

    def memory_stats(self) -> dict[str, float] | None:
        if not self.device.startswith("cuda") or "torch" not in sys.modules:
            return None
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info()
        return {"used": float(total - free), "total": float(total), "reserved": float(torch.cuda.memory_reserved())}

    def close(self) -> None:
        self.engine = None
        self.pipeline = None


class PipelineEngine:
    """FlashHead's own per-chunk path: `get_audio_embedding` then `run_pipeline`, one stream at a time."""

    name = "pipeline"

    def __init__(self, backend: FlashheadBackend):
        self.backend = backend
        p = backend.params
        self.audio_end = p["cached_audio_duration"] * p["tgt_fps"]
        self.audio_start = self.audio_end - p["frame_num"]
        self.motion_frames = p["motion_frames_num"]

    def new_stream(self, stream: FlashheadStream) -> None:
        return None

    def clear_audio(self, stream: FlashheadStream) -> None:
        return None

    def encode_audio(self, stream: FlashheadStream) -> None:
        b = self.backend
        stream.embedding = b.fh.get_audio_embedding(b.pipeline, stream.ring, self.audio_start, self.audio_end)

    def generate(self, streams: list[FlashheadStream]) -> list[np.ndarray]:
        return [self._one(stream) for stream in streams]

    def _one(self, stream: FlashheadStream) -> np.ndarray:
        if stream.embedding is None:
            raise RuntimeError("generate_chunk before encode_audio")
        b, p = self.backend, self.backend.pipeline
        p.ref_img_latent = stream.avatar.latent
        p.original_color_reference = stream.avatar.color_reference
        p.latent_motion_frames = stream.motion
        p.generator = stream.generator
        with _cuda_rng(stream):
            video = b.fh.run_pipeline(p, stream.embedding)
        stream.motion = p.latent_motion_frames
        stream.embedding = None
        return to_uint8_frames(video[self.motion_frames:])


def to_uint8_frames(video: Any) -> np.ndarray:
    """FlashHead's frames (T x H x W x 3, float 0..255, on its device) as host uint8, truncating as its writer does."""
    if hasattr(video, "detach"):
        import torch

        return video.detach().to(torch.uint8).cpu().numpy()
    return np.asarray(video).astype(np.uint8)


def _fresh_cuda_rng_state(device: Any, seed: int) -> Any:
    if "torch" not in sys.modules or not str(device).startswith("cuda"):
        return None
    import torch

    generator = torch.Generator(device="cuda").manual_seed(seed)
    return generator.get_state()


@contextlib.contextmanager
def _seeded_global_rng(device: Any, seed: int) -> Any:
    """Torch's global RNG seeded for the block and restored after: the same photo gives the same latent."""
    if "torch" not in sys.modules:
        yield
        return
    import torch

    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _cuda_rng(stream: FlashheadStream) -> Any:
    """Swap the stream's CUDA RNG state in (FlashHead's VAE posterior sampling uses the global RNG)."""
    if stream.rng_state is None:
        yield
        return
    import torch

    saved = torch.cuda.get_rng_state()
    torch.cuda.set_rng_state(stream.rng_state)
    try:
        yield
    finally:
        stream.rng_state = torch.cuda.get_rng_state()
        torch.cuda.set_rng_state(saved)


def _compile_cache_counters() -> dict[str, Any]:
    """Inductor's FX-graph cache hits and misses in this process (a warm restart should only hit)."""
    from torch._dynamo.utils import counters

    inductor = counters.get("inductor", {})
    return {"dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
            **{key: int(inductor.get(key, 0)) for key in ("fxgraph_cache_hit", "fxgraph_cache_miss",
                                                          "fxgraph_cache_bypass")}}


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in ("torch", "transformers", "diffusers", "flash_attn", "numpy"):
        module = sys.modules.get(package)
        versions[package] = getattr(module, "__version__", None) if module else None
    return versions
