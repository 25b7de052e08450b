"""`FlashheadBackend`: SoulX-FlashHead's cloned repository and checkpoints behind the Backend protocol.

FlashHead keeps one stream's state on one global pipeline object (reference latent, motion latents,
RNG) and an 8 s audio `deque` in its scripts. Here that state lives per stream
(`FlashheadStream`): a float32 ring buffer of the last 8 s, the motion latents carried between
chunks, a generator of its own and the device RNG state FlashHead's VAE sampling draws from. The
engine (engines/) swaps it into the one shared pipeline or batches it, so a second stream never
disturbs the first.

`weights: random` (FLASHHEAD_WEIGHTS=random) builds the real architecture with random parameters:
a capacity probe for a host whose checkpoints are not there yet. Frames are noise; timing is the
model's. /v1/info says so.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from inference import layout
from inference.backends.base import GEOMETRIES, Backend
from inference.backends.flashhead.engines import ENGINES
from inference.backends.flashhead.engines.base import (
    Engine,
    EngineSettings,
    FlashheadAvatar,
    FlashheadModule,
    FlashheadStream,
    LoadedFlashhead,
    seeded_global_rng,
)
from inference.backends.flashhead.paths import FlashheadPaths
from inference.errors import BackendError, BadInput

if TYPE_CHECKING:
    from inference.config import ServerConfig

log = logging.getLogger("inference.flashhead")
_IMPORT_LOCK = threading.Lock()
WEIGHTS = ("checkpoints", "random")


class FlashheadBackend(Backend):
    """SoulX-FlashHead behind the server's Backend protocol."""

    name = "flashhead"

    def __init__(self, paths: FlashheadPaths, model_type: str = "lite", device: str = "cuda",
                 weights: str = "checkpoints", engine: str = "auto", seed: int = 0, max_batch: int = 1,
                 settings: EngineSettings | None = None, warm_all_batches: bool = True):
        if weights not in WEIGHTS:
            raise BackendError(f"unknown weights mode {weights!r}", "use FLASHHEAD_WEIGHTS=checkpoints or random")
        if engine != "auto" and engine not in ENGINES:
            raise BackendError(f"unknown FlashHead engine {engine!r}",
                               f"use FLASHHEAD_ENGINE=auto or one of: {', '.join(ENGINES)}")
        self.paths = paths
        self.model_type = model_type
        self.device = device
        self.weights = weights
        self.engine_name = engine
        self.seed = seed
        self.max_batch = max_batch
        self.settings = settings or EngineSettings()
        self.warm_all_batches = warm_all_batches
        self.geometry = GEOMETRIES[model_type]
        self.flashhead: LoadedFlashhead | None = None
        self._engine: Engine | None = None
        self.timings: dict[str, float] = {}
        self._avatars: dict[str, FlashheadAvatar] = {}
        self._counter = 0

    @classmethod
    def from_config(cls, config: ServerConfig) -> FlashheadBackend:
        settings = EngineSettings(compile=config.compile, cuda_graphs=config.cuda_graphs,
                                  jpeg_on_device=config.jpeg_on_device, compile_scope=config.compile_scope,
                                  dit_dtype=config.dit_dtype)
        return cls(FlashheadPaths.from_config(config), config.model_type, config.device, config.weights,
                   config.engine, config.seed, config.max_batch, settings, config.warm_all_batches)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the flashhead backend is not loaded")
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def pipeline(self) -> Any:
        """FlashHead's pipeline object (after `load`)."""
        return self._loaded.pipeline

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._loaded.params)

    @property
    def _loaded(self) -> LoadedFlashhead:
        if self.flashhead is None:
            raise RuntimeError("the flashhead backend is not loaded")
        return self.flashhead

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
                    f"holding {layout.CHECKPOINTS}/ and {layout.WAV2VEC}/, or set FLASHHEAD_WEIGHTS=random to probe "
                    "capacity without them (frames are noise)")
        if self.device.startswith("cuda"):
            self._check_gpu()
        if self.settings.dit_dtype == "fp8":
            from inference.backends.flashhead.engines.fp8 import check_fp8_device

            check_fp8_device(self.device)

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
        """Check, import FlashHead, build its pipeline (weights to the device) and the engine; each phase timed."""
        with self._phase("check_s"):  # `import torch` and the GPU's presence: seconds of their own
            self.check()
        with self._phase("import_s"):
            cuda = self._start_cuda()
            if self.settings.compile:
                persist_compile_cache(self.paths.compile_cache)
            module = self._import_flashhead()
        with self._phase("build_s"):
            if cuda is not None:
                cuda.result()  # a failed CUDA start is raised here, with the driver's message
                self._own_cuda_stream()
            with self._compile_switches(), self._random_weights():
                pipeline = module.get_pipeline(world_size=1, ckpt_dir=str(self.paths.checkpoints),
                                               model_type=self.model_type, wav2vec_dir=str(self.paths.wav2vec))
            self.flashhead = LoadedFlashhead(module, pipeline, module.get_infer_params(), self.model_type)
            self._check_geometry()
            if self.settings.dit_dtype == "fp8":
                self._quantize_dit()
        with self._phase("engine_s"):
            self.engine = self._make_engine()

    def _start_cuda(self) -> Future[None] | None:
        """Create the CUDA context on a thread while FlashHead imports (the driver's seconds release the GIL);
        `build` joins it before the first weight reaches the GPU. Its seconds: `cuda_init_s`."""
        if not self.device.startswith("cuda"):
            return None
        import torch

        def start() -> None:
            started = time.perf_counter()
            torch.zeros(1, device=self.device)
            self.timings["cuda_init_s"] = time.perf_counter() - started

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuda-init")
        future = pool.submit(start)
        pool.shutdown(wait=False)  # returns at once; the thread ends when the context is up
        return future

    def _own_cuda_stream(self) -> None:
        """This thread (the server's model thread) queues its work on a CUDA stream of its own, not the legacy
        default stream. The encoding of a chunk's JPEG files runs on the output thread beside the next chunk, and
        torchvision's nvJPEG serialises with the default stream (recent releases synchronise it before every image,
        and encode on a stream that blocks with it): chunks computed there would wait for it, and it for them."""
        import torch

        torch.cuda.set_stream(torch.cuda.Stream(self.device))

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - started
        log.info("start-up phase %s took %.1f s", name.removesuffix("_s"), self.timings[name])

    def _import_flashhead(self) -> FlashheadModule:
        """Import `flash_head.inference` from the repository.

        FlashHead reads configs/infer_params.yaml relative to the working directory when the module
        is imported, so the import runs with the repository as the working directory (under a lock,
        restored at once); the path is added to sys.path as FlashHead's own scripts run from it.
        """
        repo = str(self.paths.repo)
        with _IMPORT_LOCK:
            _skip_unused_sklearn()
            if repo not in sys.path:
                sys.path.insert(0, repo)
            cwd = os.getcwd()
            os.chdir(repo)
            try:
                return cast(FlashheadModule, importlib.import_module("flash_head.inference"))
            except ImportError as error:
                raise BackendError(f"cannot import FlashHead from {repo}: {error}",
                                   "install its requirements into this venv (`flashhead provision` does)") from error
            finally:
                os.chdir(cwd)

    @contextlib.contextmanager
    def _compile_switches(self) -> Iterator[None]:
        """FlashHead's own COMPILE_MODEL / COMPILE_VAE, read by its pipeline's constructor: set for the build only."""
        module: Any = sys.modules["flash_head.src.pipeline.flash_head_pipeline"]
        saved = (module.COMPILE_MODEL, module.COMPILE_VAE)
        module.COMPILE_MODEL = module.COMPILE_VAE = self.settings.compile
        try:
            yield
        finally:
            module.COMPILE_MODEL, module.COMPILE_VAE = saved

    def _random_weights(self) -> contextlib.AbstractContextManager[None]:
        if self.weights != "random":
            return contextlib.nullcontext()
        from inference.backends.flashhead.arch import random_weights

        return random_weights(self.model_type, self.device)

    def _check_geometry(self) -> None:
        p = self._loaded.params
        motion = p.get("motion_frames_num")
        g = self.geometry
        if (p["frame_num"], motion, p["tgt_fps"], p["sample_rate"], p["height"], p["width"]) != (
                g.frames_per_call, g.motion_frames, g.fps, g.sample_rate, g.height, g.width):
            raise BackendError(
                f"FlashHead's chunk geometry ({p['frame_num']} frames, {motion} motion frames, {p['tgt_fps']} fps) "
                f"differs from the server's {self.model_type} geometry",
                "use the FlashHead commit pinned in playbooks/flashhead.yaml")

    def _quantize_dit(self) -> None:
        from inference.backends.flashhead.engines.fp8 import quantize_dit

        model = self._loaded.pipeline.model
        replaced = quantize_dit(getattr(model, "_orig_mod", model))  # under FlashHead's torch.compile wrapper
        log.info("DiT in FP8: %d linear layers converted (FLASHHEAD_DIT_DTYPE=fp8)", replaced)

    def _make_engine(self) -> Engine:
        name = self.engine_name
        if name == "auto":
            name = "fast" if self._is_torch_model() else "pipeline"
        module_name, class_name = ENGINES[name].split(":")
        engine_class = getattr(importlib.import_module(module_name), class_name)
        return cast(Engine, engine_class(self._loaded, self.settings))

    def _is_torch_model(self) -> bool:
        import torch

        model = self._loaded.pipeline.model
        return isinstance(getattr(model, "_orig_mod", model), torch.nn.Module)

    def warm_up(self) -> None:
        """Run every batch size the engine names twice (the second compiles the motion re-encode's shapes,
        or records the CUDA graph), so no real chunk pays a compile. Each size's seconds are timed."""
        started = time.perf_counter()
        image = np.full((self.geometry.height, self.geometry.width, 3), 128, np.uint8)
        avatar = self.prepare_avatar(image)  # the photo's VAE encode: eager (`_eager`)
        self.timings["warm_up_avatar_s"] = time.perf_counter() - started
        sizes = self.engine.warm_up_sizes(self.max_batch)
        if not self.warm_all_batches:
            sizes = sizes[:2]  # the rest record their CUDA graph on first use (about 1 s each)
        for size in sizes:
            size_started = time.perf_counter()
            streams = [self.new_stream(avatar, seed=index) for index in range(size)]
            for _ in range(2):
                for stream in streams:
                    self.encode_audio(stream, np.zeros(self.geometry.samples_per_chunk, np.float32))
                self.generate_chunks(streams)
            for stream in streams:
                self.close_stream(stream)
            self.timings[f"warm_up_batch{size}_s"] = time.perf_counter() - size_started
        self.release_avatar(avatar)
        self.timings["warm_up_s"] = time.perf_counter() - started
        log.info("start-up phase warm_up took %.1f s (batch sizes %s)", self.timings["warm_up_s"], sizes)

    # ---- avatars and streams -------------------------------------------------------------------

    def prepare_avatar(self, image: np.ndarray) -> FlashheadAvatar:
        """VAE-encode the photo with FlashHead's own `prepare_params` (resize, centre-crop, encode)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise BadInput(f"expected an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
        from PIL import Image

        loaded = self._loaded
        self._counter += 1
        name = f"avatar{self._counter}"
        with tempfile.TemporaryDirectory(prefix="flashhead-avatar-") as folder:
            path = Path(folder) / f"{name}.png"
            Image.fromarray(image).save(path)
            with seeded_global_rng(str(loaded.pipeline.device), self.seed), self._eager():  # VAE: posterior
                loaded.module.get_base_data(loaded.pipeline, cond_image_path_or_dir=str(path), base_seed=self.seed,
                                            use_face_crop=False)
        p = loaded.pipeline
        avatar = FlashheadAvatar(name, p.cond_image_tensor_dict[name], p.ref_img_latent_dict[name],
                                 p.cond_image_dict[name])
        self._avatars[name] = avatar
        return avatar

    def _eager(self) -> contextlib.AbstractContextManager[Any]:
        """The photo's VAE encode runs once per avatar: eager. Compiled, it cost every start a trace of its own
        graph (33 frames of the photo), and the motion re-encode's 9 frames then recompiled the encoder for a
        dynamic frame count; the per-chunk encode keeps one static graph. `set_stance` is process-wide, which
        is safe here: avatars are prepared on the model thread, between chunks (Scheduler.call)."""
        if not self.settings.compile:
            return contextlib.nullcontext()
        import torch

        return torch.compiler.set_stance("force_eager")

    def release_avatar(self, avatar: FlashheadAvatar) -> None:
        self._avatars.pop(avatar.name, None)
        p = self._loaded.pipeline
        for table in (p.cond_image_dict, p.cond_image_tensor_dict, p.ref_img_latent_dict):
            table.pop(avatar.name, None)

    def new_stream(self, avatar: FlashheadAvatar, seed: int) -> FlashheadStream:
        p = self._loaded.pipeline
        # FlashHead's reset_person_name sets the initial motion latents from the avatar's latent.
        p.cond_image_dict[avatar.name] = avatar.image
        p.cond_image_tensor_dict[avatar.name] = avatar.color_reference
        p.ref_img_latent_dict[avatar.name] = avatar.latent
        p.reset_person_name(avatar.name)
        generator = type(p.generator)(device=p.device).manual_seed(seed)
        params = self._loaded.params
        ring = np.zeros(params["sample_rate"] * params["cached_audio_duration"], np.float32)
        stream = FlashheadStream(avatar, seed, generator, p.latent_motion_frames, ring)
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
        return self.start_chunks(streams)()

    def start_chunks(self, streams: list[FlashheadStream]) -> Callable[[], list[np.ndarray]]:
        finish = self.engine.start_frames(streams)
        self._count(streams)
        return finish

    @property
    def encodes_jpeg(self) -> bool:
        return self._engine is not None and self._engine.encodes_jpeg

    def generate_jpeg_chunks(self, streams: list[FlashheadStream], quality: int) -> list[list[bytes]]:
        return self.start_jpeg_chunks(streams, quality)()

    def start_jpeg_chunks(self, streams: list[FlashheadStream], quality: int) -> Callable[[], list[list[bytes]]]:
        finish = self.engine.start_jpeg(streams, quality)
        self._count(streams)
        return finish

    @staticmethod
    def _count(streams: list[FlashheadStream]) -> None:
        for stream in streams:
            stream.chunks += 1

    def clear_audio(self, stream: FlashheadStream) -> None:
        stream.ring[:] = 0.0
        stream.embedding = None
        stream.audio_fed = False

    def close_stream(self, stream: FlashheadStream) -> None:
        stream.embedding = None
        stream.vae_generator = None
        stream.motion = None

    # ---- facts ---------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "backend": self.name, "model_type": self.model_type, "device": self.device,
            "weights": self.weights, "compile": self.settings.compile, "repo": str(self.paths.repo),
            "engine": self._engine.name if self._engine else self.engine_name, "versions": _versions(),
            "cuda_graphs": bool(self._engine and self._engine.cuda_graphs), "jpeg_on_device": self.encodes_jpeg,
            "compile_scope": self.settings.compile_scope if self.settings.compile else None,
            "dit_dtype": self.settings.dit_dtype,
            "startup_s": {k: round(v, 2) for k, v in self.timings.items()},
        }
        if self.weights == "random":
            facts["warning"] = ("WEIGHTS=RANDOM: capacity probe only. Frames are noise; timing is the real "
                                "model's. Provision the checkpoints before serving users.")
        if self.settings.compile and "torch" in sys.modules:
            facts["compile_cache"] = _compile_cache_counters(self.paths.compile_cache)
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
        self._engine = None
        self.flashhead = None


def _skip_unused_sklearn() -> None:
    """transformers imports scikit-learn with its generation utilities (assisted decoding's ROC curve) whenever
    it is installed, and librosa installs it on a FlashHead host: 2.3 s of every start on the H200 (-X importtime)
    for code wav2vec2 never runs. transformers' own availability flag, cleared before FlashHead imports its models."""
    try:
        from transformers.utils import import_utils
    except ImportError:
        return
    if getattr(import_utils, "_sklearn_available", False):
        import_utils._sklearn_available = False
        log.debug("transformers' scikit-learn import skipped (unused by wav2vec2)")


def persist_compile_cache(folder: Path) -> None:
    """Keep inductor's and Triton's caches in `folder` (inductor/, triton/): a restart skips the compile.

    Environment variables are the only setting inductor and Triton read for their cache folders. Set,
    not defaulted: torch writes its default (/tmp/torchinductor_<user>) into the environment the
    first time it resolves the cache, so an inherited value must not win over the config (measured
    on the H100: a restart that inherited it recompiled everything, 180 s instead of 51 s).
    """
    for name, place in (("TORCHINDUCTOR_CACHE_DIR", layout.inductor_cache), ("TRITON_CACHE_DIR", layout.triton_cache)):
        path = Path(place(folder))
        path.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(path)


def _compile_cache_counters(folder: Path) -> dict[str, Any]:
    """Inductor's FX-graph cache hits and misses in this process (a warm restart should only hit)."""
    from torch._dynamo.utils import counters

    inductor: dict[str, int] = dict(counters.get("inductor", {}))
    return {"dir": str(folder), **{key: int(inductor.get(key, 0)) for key in
                                   ("fxgraph_cache_hit", "fxgraph_cache_miss", "fxgraph_cache_bypass")}}


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in ("torch", "transformers", "diffusers", "flash_attn", "numpy"):
        module = sys.modules.get(package)
        versions[package] = getattr(module, "__version__", None) if module else None
    return versions
