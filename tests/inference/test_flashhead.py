"""Contract tests of the flashhead backend and both engines against a fake FlashHead repository.

The fake (tests/fixtures/fake_flashhead) has FlashHead's module layout, API, global-pipeline state
and, at tiny sizes, its torch modules with Lite's and Pro's geometry and each model's VAE API. So
these tests run the real adapter and the real `fast` and `pipeline` engines on CPU: start-up checks,
chunk geometry, per-stream state, the fast engine against FlashHead's own `run_pipeline` for every
model type, and what happens when an engine cannot serve a model type. The real model on a GPU is
covered by benchmarks/gpu_*.py (results in benchmarks/results/gpu-*.json).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch", reason="the flashhead backend runs torch modules (CI installs the CPU build)")

from inference.backends import MODEL_TYPES, create_backend  # noqa: E402
from inference.backends.base import GEOMETRIES, LITE  # noqa: E402
from inference.backends.flashhead.backend import FlashheadBackend  # noqa: E402
from inference.backends.flashhead.engines import ENGINES  # noqa: E402
from inference.backends.flashhead.engines.base import FlashheadStream  # noqa: E402
from inference.backends.flashhead.engines.fast import FastEngine  # noqa: E402
from inference.backends.flashhead.paths import MODEL_DIRS  # noqa: E402
from inference.capacity import safe_streams  # noqa: E402
from inference.config import ServerConfig  # noqa: E402
from inference.errors import BackendError, BadInput  # noqa: E402

from .conftest import face_image, speech_like  # noqa: E402

FAKE_REPO = Path(__file__).resolve().parents[1] / "fixtures" / "fake_flashhead"
CASES = [(model_type, engine) for model_type in MODEL_TYPES for engine in ENGINES]


def make_checkpoints(root: Path, model_type: str = "lite") -> Path:
    models = root / "models"
    model_dir, vae_dir = MODEL_DIRS[model_type]
    for folder in (f"SoulX-FlashHead-1_3B/{model_dir}", f"SoulX-FlashHead-1_3B/{vae_dir}", "wav2vec2-base-960h"):
        (models / folder).mkdir(parents=True, exist_ok=True)
        (models / folder / "config.json").write_text("{}")
    return models


def config(tmp_path: Path, **changes: object) -> ServerConfig:
    base = ServerConfig(backend="flashhead", model_root=tmp_path, repo_dir=FAKE_REPO,
                        checkpoint_dir=tmp_path / "models", device="cpu")
    return base.replace(**changes)


@pytest.fixture(autouse=True)
def fresh_fake() -> None:
    """Each test imports the fake anew (FlashHead keeps module-level state, e.g. infer_params)."""
    for name in [n for n in sys.modules if n == "flash_head" or n.startswith("flash_head.")]:
        del sys.modules[name]


def loaded(tmp_path: Path, model_type: str = "lite", engine: str = "auto", **changes: object) -> FlashheadBackend:
    make_checkpoints(tmp_path, model_type)
    backend = create_backend(config(tmp_path, model_type=model_type, engine=engine, **changes))
    assert isinstance(backend, FlashheadBackend)
    backend.load()
    return backend


@pytest.fixture
def backend(tmp_path: Path) -> FlashheadBackend:
    return loaded(tmp_path)


def audio_chunks(seconds: float, seed: int, samples: int = LITE.samples_per_chunk) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    audio = speech_like(seconds)[:, 0].astype(np.float32) / 32768 * rng.uniform(0.3, 1.0)
    audio += rng.normal(0, 0.05, audio.shape).astype(np.float32)
    count = len(audio) // samples
    return [audio[i * samples:(i + 1) * samples] for i in range(count)]


def run_streams(backend: FlashheadBackend, images: list[np.ndarray], seeds: list[int], chunks: int,
                batched: bool) -> list[list[np.ndarray]]:
    """Fresh streams (one per image/seed), `chunks` chunks each; batched in one call or one by one."""
    samples = backend.geometry.samples_per_chunk
    streams = [backend.new_stream(backend.prepare_avatar(image), seed)
               for image, seed in zip(images, seeds, strict=True)]
    audio = [audio_chunks(chunks * samples / 16000 + 0.1, seed, samples) for seed in seeds]
    frames: list[list[np.ndarray]] = [[] for _ in streams]
    for index in range(chunks):
        for stream, chunks_of_stream in zip(streams, audio, strict=True):
            backend.encode_audio(stream, chunks_of_stream[index])
        results = backend.generate_chunks(streams) if batched else [backend.generate_chunk(s) for s in streams]
        for mine, result in zip(frames, results, strict=True):
            mine.append(result)
    return frames


def assert_bf16_close(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to float rounding before the uint8 truncation: at most one level, at few pixels."""
    difference = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert difference.max() <= 1 and difference.mean() < 1e-3, (difference.max(), difference.mean())


# ---- start-up ------------------------------------------------------------------------------------------------

def test_missing_repository_fails_with_remedy(tmp_path: Path) -> None:
    make_checkpoints(tmp_path)
    backend = create_backend(config(tmp_path, repo_dir=tmp_path / "nowhere"))
    with pytest.raises(BackendError) as caught:
        backend.load()
    assert "repository is not at" in caught.value.message and "nowhere" in caught.value.message
    remedy = caught.value.remedy or ""
    assert "flashhead provision" in remedy and "FLASHHEAD_REPO_DIR" in remedy


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_missing_checkpoints_are_named(tmp_path: Path, model_type: str) -> None:
    models = make_checkpoints(tmp_path, "lite")
    (models / "wav2vec2-base-960h" / "config.json").unlink()
    backend = create_backend(config(tmp_path, model_type=model_type))
    with pytest.raises(BackendError) as caught:
        backend.load()
    message = caught.value.message
    assert "wav2vec2-base-960h/config.json" in message
    assert ("Model_Pro" in message) == (model_type == "pro")
    assert "FLASHHEAD_WEIGHTS=random" in (caught.value.remedy or "")


@pytest.mark.parametrize("lacking", ["torch", "gpu"])
def test_missing_gpu_fails_with_remedy(tmp_path: Path, lacking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    make_checkpoints(tmp_path)
    if lacking == "torch":
        monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU host
    backend = create_backend(config(tmp_path, device="cuda"))
    with pytest.raises(BackendError) as caught:
        backend.load()
    expected = {"torch": ("torch is not installed", "flashhead provision"),
                "gpu": ("no CUDA GPU is visible", "nvidia-smi")}[lacking]
    assert expected[0] in caught.value.message and expected[1] in (caught.value.remedy or "")


def test_cuda_starts_while_flashhead_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    make_checkpoints(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    context_up = threading.Event()
    seen: dict[str, object] = {}

    def create_context(*_: object, **kwargs: object) -> None:
        seen["thread"] = threading.current_thread().name
        assert context_up.wait(10), "FlashHead's import did not run while the context was being created"
        raise RuntimeError("CUDA driver initialization failed")

    backend = create_backend(config(tmp_path, device="cuda"))
    assert isinstance(backend, FlashheadBackend)
    importing = backend._import_flashhead

    def import_flashhead() -> object:
        context_up.set()  # the import is under way while the CUDA start waits for it
        return importing()

    monkeypatch.setattr(backend, "_import_flashhead", import_flashhead)
    monkeypatch.setattr(torch, "zeros", create_context)
    with pytest.raises(RuntimeError, match="CUDA driver initialization failed"):
        backend.load()
    assert str(seen["thread"]).startswith("cuda-init") and backend.flashhead is None
    assert "import_s" in backend.timings and "build_s" not in backend.timings


def test_random_weights_mode_is_announced(tmp_path: Path) -> None:
    backend = create_backend(config(tmp_path, weights="random"))
    facts = backend.info()
    assert facts["weights"] == "random" and "noise" in facts["warning"]
    checkpoints = create_backend(config(tmp_path)).info()
    assert checkpoints["weights"] == "checkpoints" and "warning" not in checkpoints


def test_paths_come_from_the_config_only(tmp_path: Path) -> None:
    backend = create_backend(config(tmp_path, compile_cache_dir=tmp_path / "cc", checkpoint_dir=tmp_path / "ck"))
    assert isinstance(backend, FlashheadBackend)
    assert backend.paths.repo == FAKE_REPO and backend.paths.compile_cache == tmp_path / "cc"
    assert backend.paths.checkpoints == tmp_path / "ck" / "SoulX-FlashHead-1_3B"
    defaults = create_backend(ServerConfig(backend="flashhead", model_root=tmp_path))
    assert isinstance(defaults, FlashheadBackend)
    resolved = ServerConfig(model_root=tmp_path)
    assert defaults.paths.repo == resolved.resolved_repo_dir
    assert defaults.paths.compile_cache == resolved.resolved_compile_cache_dir
    assert defaults.paths.wav2vec.parent == resolved.resolved_checkpoint_dir


def test_load_uses_flashheads_pipeline_and_compile_switches(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # torch exports its default cache dir into the environment; an inherited one must not win.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor_inherited")
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    backend = loaded(tmp_path, compile=True, compile_cache_dir=tmp_path / "cc")
    assert backend.pipeline.compiled == (True, True)
    module = sys.modules["flash_head.src.pipeline.flash_head_pipeline"]
    assert (module.COMPILE_MODEL, module.COMPILE_VAE) == (True, True)  # FlashHead's own values, restored
    facts = backend.info()
    assert facts["engine"] == "fast" and facts["compile"] is True
    assert facts["jpeg_on_device"] is False and not backend.encodes_jpeg  # no CUDA here
    assert facts["cuda_graphs"] is False  # CUDA graphs need a GPU
    assert set(facts["startup_s"]) >= {"check_s", "import_s", "build_s", "engine_s"}
    assert (tmp_path / "cc" / "inductor").is_dir() and (tmp_path / "cc" / "triton").is_dir()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cc" / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "cc" / "triton")


def test_compile_off_leaves_the_flashhead_switches_off(tmp_path: Path) -> None:
    backend = loaded(tmp_path, compile=False)
    assert backend.pipeline.compiled == (False, False)
    module = sys.modules["flash_head.src.pipeline.flash_head_pipeline"]
    assert (module.COMPILE_MODEL, module.COMPILE_VAE) == (True, True)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_the_photos_encode_runs_eager_when_compiled(tmp_path: Path, model_type: str) -> None:
    import torch

    backend = loaded(tmp_path, model_type=model_type, compile=True, compile_cache_dir=tmp_path / "cc")
    traced: list[int] = []

    def counting(graph: torch.fx.GraphModule, _inputs: object) -> object:
        traced.append(1)
        return graph.forward

    vae = backend.pipeline.vae
    vae.encode = torch.compile(vae.encode, backend=counting)  # as FlashHead's COMPILE_VAE wraps it
    avatar = backend.prepare_avatar(np.full((96, 80, 3), 128, np.uint8))
    assert traced == [] and avatar.latent is not None  # once per avatar: no trace, no graph of its own
    with torch.no_grad():
        vae.encode(avatar.color_reference.repeat(1, 1, backend.geometry.frames_per_call, 1, 1))
    assert traced, "the same compiled encode, called outside prepare_avatar, is traced"


def test_transformers_skips_its_unused_sklearn_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "transformers"
    (package / "utils").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "utils" / "__init__.py").write_text("")
    (package / "utils" / "import_utils.py").write_text("_sklearn_available = True  # scikit-learn is installed\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [n for n in sys.modules if n == "transformers" or n.startswith("transformers.")]:
        monkeypatch.delitem(sys.modules, name)
    loaded(tmp_path)
    assert sys.modules["transformers.utils.import_utils"]._sklearn_available is False
    for name in [n for n in sys.modules if n == "transformers" or n.startswith("transformers.")]:
        del sys.modules[name]  # the stand-in leaves with the test


@pytest.mark.parametrize(("model_type", "engine"), CASES)
def test_every_engine_serves_every_model_type(tmp_path: Path, model_type: str, engine: str) -> None:
    backend = loaded(tmp_path, model_type, engine)
    geometry = GEOMETRIES[model_type]
    assert backend.geometry == geometry and backend.info()["engine"] == engine
    assert backend.params["motion_frames_num"] == geometry.motion_frames
    (frames,) = run_streams(backend, [face_image()], [1], chunks=1, batched=False)
    assert frames[0].shape == (geometry.new_frames, 512, 512, 3) and frames[0].dtype == np.uint8


def test_auto_engine_is_fast_on_a_torch_model(tmp_path: Path) -> None:
    assert loaded(tmp_path).info()["engine"] == "fast"


@pytest.mark.parametrize("missing", ["scale", "model"])
def test_engine_that_cannot_serve_a_model_type_says_so_at_start_up(tmp_path: Path, missing: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A VAE lacking a method the fast engine calls fails `load` with the remedy, not warm-up."""
    make_checkpoints(tmp_path, "pro")
    backend = create_backend(config(tmp_path, model_type="pro", engine="fast"))
    sys.path.insert(0, str(FAKE_REPO))
    try:
        from flash_head.wan.modules import vae as wan_vae  # the fake's module, as the backend will import it
    finally:
        sys.path.remove(str(FAKE_REPO))
    original = wan_vae.WanVAE.__init__

    def without(self: object, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        delattr(self, missing)

    monkeypatch.setattr(wan_vae.WanVAE, "__init__", without)
    with pytest.raises(BackendError) as caught:
        backend.load()
    assert "fast engine cannot serve FlashHead pro" in caught.value.message and missing in caught.value.message
    assert "FLASHHEAD_ENGINE=pipeline" in (caught.value.remedy or "")


def test_unknown_engine_is_refused_with_the_choices(tmp_path: Path) -> None:
    from inference.backends.flashhead.paths import FlashheadPaths

    with pytest.raises(BackendError, match="unknown FlashHead engine") as caught:
        FlashheadBackend(FlashheadPaths.from_config(config(tmp_path)), engine="turbo")
    assert "fast" in (caught.value.remedy or "") and "pipeline" in (caught.value.remedy or "")


# ---- the fast engine against FlashHead's own path --------------------------------------------------------------

@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_fast_engine_equals_flashheads_run_pipeline(tmp_path: Path, model_type: str) -> None:
    """Same photo, audio and seed: the batched engine at B = 1 and B = 2 gives FlashHead's frames."""
    images, seeds = [face_image(), face_image(400, 300)[:, ::-1].copy()], [5, 6]
    flashhead = loaded(tmp_path, model_type, "pipeline")
    reference = run_streams(flashhead, images, seeds, chunks=2, batched=False)
    fast = loaded(tmp_path, model_type, "fast")
    alone = run_streams(fast, images[:1], seeds[:1], chunks=2, batched=False)
    batched = run_streams(fast, images, seeds, chunks=2, batched=True)
    for index in range(2):
        assert_bf16_close(alone[0][index], reference[0][index])
        for stream in range(2):
            assert_bf16_close(batched[stream][index], reference[stream][index])
    assert not np.array_equal(batched[0][1], batched[1][1])


# ---- per-stream state ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", list(ENGINES))
def test_second_stream_does_not_disturb_the_first(tmp_path: Path, engine: str) -> None:
    backend = loaded(tmp_path, engine=engine)
    image_a, image_b = face_image(), face_image(400, 300)[:, ::-1].copy()
    chunks_a, chunks_b = audio_chunks(2, 1), audio_chunks(2, 2)
    alone = run_streams(backend, [image_a], [7], chunks=2, batched=False)[0]
    a = backend.new_stream(backend.prepare_avatar(image_a), 7)
    b = backend.new_stream(backend.prepare_avatar(image_b), 8)
    together = []
    for index in range(2):
        backend.encode_audio(b, chunks_b[index])
        backend.generate_chunk(b)
        backend.encode_audio(a, audio_chunks(2.06, 7)[index])
        together.append(backend.generate_chunks([a])[0])
    assert len(together) == len(alone) == 2
    for mine, reference in zip(together, alone, strict=True):
        np.testing.assert_array_equal(mine, reference)
    assert chunks_a  # the other stream's audio differs from the first's


def test_seed_and_audio_drive_the_frames(backend: FlashheadBackend) -> None:
    image = face_image()
    first = run_streams(backend, [image], [11], chunks=2, batched=False)[0]
    again = run_streams(backend, [image], [11], chunks=2, batched=False)[0]
    other_seed = run_streams(backend, [image], [12], chunks=2, batched=False)[0]
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other_seed[1])
    stream = backend.new_stream(backend.prepare_avatar(image), 11)
    backend.encode_audio(stream, audio_chunks(1, 99)[0])
    assert not np.array_equal(backend.generate_chunk(stream), first[0])


def test_jpeg_files_come_back_per_stream_and_frame(backend: FlashheadBackend) -> None:
    import torch

    def png_files(images: list[torch.Tensor], quality: int) -> list[torch.Tensor]:  # nvJPEG's shape, lossless
        files = []
        for image in images:
            buffer = io.BytesIO()
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG")
            files.append(torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8))
        return files

    def fed_streams() -> list[FlashheadStream]:  # two streams, own seed and audio, one chunk fed
        streams = [backend.new_stream(avatar, seed) for seed in (5, 6)]
        for seed, stream in enumerate(streams):
            backend.encode_audio(stream, audio_chunks(1, seed)[0])
        return streams

    engine = backend.engine
    assert isinstance(engine, FastEngine)
    avatar = backend.prepare_avatar(face_image())
    raw = engine.generate(fed_streams())
    engine.jpeg = png_files
    streams = fed_streams()
    motion = [stream.motion.clone() for stream in streams]
    finish = engine.start_jpeg(streams, quality=80)
    # the chunk is computed now (the next may start); the files are made by the call, on another thread
    assert not any(stream.audio_fed for stream in streams)
    assert all(not torch.equal(stream.motion, before) for stream, before in zip(streams, motion, strict=True))
    with ThreadPoolExecutor(max_workers=1) as output:
        files = output.submit(finish).result()
    assert len(files) == 2 and [len(f) for f in files] == [len(frames) for frames in raw]
    for per_stream, frames in zip(files, raw, strict=True):
        decoded = np.stack([np.asarray(Image.open(io.BytesIO(f))) for f in per_stream])
        np.testing.assert_array_equal(decoded, frames)
    assert not np.array_equal(raw[0], raw[1])  # the two streams' files are not interchangeable


def test_start_frames_computes_now_and_copies_on_another_thread(backend: FlashheadBackend) -> None:
    engine = backend.engine
    assert isinstance(engine, FastEngine)
    avatar = backend.prepare_avatar(face_image())
    twins = [[backend.new_stream(avatar, 7)] for _ in range(2)]  # same photo, seed and audio
    for (stream,) in twins:
        backend.encode_audio(stream, audio_chunks(1, 3)[0])
    expected = backend.generate_chunks(twins[0])
    finish = backend.start_chunks(twins[1])
    assert not twins[1][0].audio_fed and twins[1][0].chunks == 1  # computed and counted before the copy
    with ThreadPoolExecutor(max_workers=1) as output:
        frames = output.submit(finish).result()
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0], expected[0])


def test_audio_ring_keeps_the_last_eight_seconds(backend: FlashheadBackend) -> None:
    stream = backend.new_stream(backend.prepare_avatar(face_image()), 0)
    assert stream.ring.shape == (8 * 16000,) and not stream.ring.any()
    chunks = audio_chunks(10, 3)
    for chunk in chunks:
        backend.encode_audio(stream, chunk)
    expected = np.concatenate(chunks)[-8 * 16000:]
    np.testing.assert_array_equal(stream.ring, expected)
    backend.clear_audio(stream)
    assert not stream.ring.any() and not stream.audio_fed
    with pytest.raises(ValueError, match="expected 15360 samples"):
        backend.encode_audio(stream, np.zeros(100, np.float32))
    with pytest.raises(RuntimeError, match="before encode_audio"):
        backend.generate_chunk(stream)


@pytest.mark.parametrize(("model_type", "engine"), CASES)
def test_motion_state_carries_over_between_chunks(tmp_path: Path, model_type: str, engine: str) -> None:
    backend = loaded(tmp_path, model_type, engine)
    stream = backend.new_stream(backend.prepare_avatar(face_image()), 0)
    assert stream.motion.shape[1] == 1  # FlashHead starts from the reference latent's first frame
    backend.encode_audio(stream, audio_chunks(1.2, 1, backend.geometry.samples_per_chunk)[0])
    backend.generate_chunk(stream)
    # Lite: 9 motion frames -> 2 LTX latent frames; Pro: 5 motion frames -> 2 Wan latent frames.
    assert stream.motion.shape[1] == 2 and stream.chunks == 1


def test_avatars_are_released_and_bad_images_refused(backend: FlashheadBackend) -> None:
    avatar = backend.prepare_avatar(face_image())
    assert avatar.name in backend.pipeline.ref_img_latent_dict
    again = backend.prepare_avatar(face_image())
    assert (again.latent == avatar.latent).all()  # the same photo gives the same latent
    backend.release_avatar(avatar)
    assert avatar.name not in backend.pipeline.ref_img_latent_dict
    with pytest.raises(BadInput):
        backend.prepare_avatar(np.zeros((10, 10), np.uint8))


@pytest.mark.parametrize("engine", list(ENGINES))
def test_warm_up_leaves_no_state_behind(tmp_path: Path, engine: str) -> None:
    backend = loaded(tmp_path, engine=engine, max_batch=3)
    backend.warm_up()
    assert not any(name.startswith("avatar") for name in backend.pipeline.ref_img_latent_dict)
    sizes = [key for key in backend.timings if key.startswith("warm_up_batch")]
    assert sizes == (["warm_up_batch1_s", "warm_up_batch2_s"] if engine == "fast" else ["warm_up_batch1_s"])
    assert backend.timings["warm_up_s"] >= 0 and "warm_up_s" in backend.info()["startup_s"]


# ---- through the real server -----------------------------------------------------------------------------------

@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_server_streams_flashhead_frames(tmp_path: Path, server_factory, model_type: str) -> None:  # type: ignore[no-untyped-def]
    from inference.client import FlashheadClient

    from .conftest import encode_image

    make_checkpoints(tmp_path, model_type)
    server = server_factory({"FLASHHEAD_BACKEND": "flashhead", "FLASHHEAD_DEVICE": "cpu",
                             "FLASHHEAD_MODEL_TYPE": model_type,
                             "FLASHHEAD_MODEL_ROOT": str(tmp_path), "FLASHHEAD_REPO_DIR": str(FAKE_REPO),
                             "FLASHHEAD_CHECKPOINT_DIR": str(tmp_path / "models")}, wait_ready=False)
    # Warm-up runs real chunks of the fake model on the CPU: on a busy machine that takes a while.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log_text()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                break
        time.sleep(0.2)
    info = server.info()
    assert info["backend"] == "flashhead" and info["backend_info"]["engine"] == "fast"
    assert info["model_type"] == model_type
    assert set(info["backend_info"]["startup_s"]) >= {"check_s", "build_s", "warm_up_avatar_s", "warm_up_s"}
    geometry = GEOMETRIES[model_type]
    pcm = speech_like(geometry.chunk_seconds * 2).tobytes()

    async def stream() -> int:
        async with FlashheadClient(server.url) as client:
            result = await client.stream_audio(pcm, image=encode_image(face_image(), "PNG"), output="rgb")
            return len(result.frames)

    assert asyncio.run(stream()) == 2 * geometry.new_frames


# ---- capacity ------------------------------------------------------------------------------------------------

def test_safe_streams_from_measured_chunk_times() -> None:
    # The H100's fast engine: 98 ms alone, 582 ms for 8, 899 ms for 12 (benchmarks/results/gpu-batching-*).
    assert safe_streams({}, 0.96, 8) is None
    assert safe_streams({1: 0.098}, 0.96, 1) == 8  # streams take turns: 8 x 98 ms fit in 864 ms
    assert safe_streams({1: 0.145}, 0.96, 1) == 5
    measured = {1: 0.098, 8: 0.582, 12: 0.899}
    # 12 in one batch take 0.899 s > 90 % of 0.96 s; the line through B = 1 and 12 admits 11.
    assert safe_streams(measured, 0.96, 12) == 11
    # Batches of 4 (0.316 s each on that line): 4 + 4 + 2 streams fit in 0.864 s, 11 would not.
    assert safe_streams(measured, 0.96, 4) == 10
    assert safe_streams({1: 2.0}, 0.96, 1) == 0  # slower than real time: admit nobody
