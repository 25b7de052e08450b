"""Contract tests of the flashhead backend against a fake FlashHead repository (tests/fixtures/fake_flashhead).

The fake has FlashHead's module layout, API and global-pipeline state, with NumPy frames, so these
tests prove the adapter's start-up checks, chunk geometry and per-stream state handling on CPU.
The real model on a GPU is covered by benchmarks/gpu_*.py (results in benchmarks/results/gpu-*.json).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.backends import create_backend
from inference.backends.base import LITE, PRO
from inference.backends.flashhead import FlashheadBackend
from inference.capacity import safe_streams
from inference.config import ServerConfig
from inference.errors import BackendError, BadInput

from .conftest import face_image, speech_like

FAKE_REPO = Path(__file__).resolve().parents[1] / "fixtures" / "fake_flashhead"
SAMPLES = LITE.samples_per_chunk


def make_checkpoints(root: Path, model_type: str = "lite") -> Path:
    models = root / "models"
    model_dir, vae_dir = {"lite": ("Model_Lite", "VAE_LTX"), "pro": ("Model_Pro", "VAE_Wan")}[model_type]
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


@pytest.fixture
def backend(tmp_path: Path) -> FlashheadBackend:
    make_checkpoints(tmp_path)
    loaded = create_backend(config(tmp_path))
    assert isinstance(loaded, FlashheadBackend)
    loaded.load()
    return loaded


def audio_chunks(seconds: float, seed: int, samples: int = SAMPLES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    audio = speech_like(seconds)[:, 0].astype(np.float32) / 32768 * rng.uniform(0.3, 1.0)
    count = len(audio) // samples
    return [audio[i * samples:(i + 1) * samples] for i in range(count)]


def run_alone(backend: FlashheadBackend, image: np.ndarray, chunks: list[np.ndarray], seed: int) -> list[np.ndarray]:
    stream = backend.new_stream(backend.prepare_avatar(image), seed)
    frames = []
    for chunk in chunks:
        backend.encode_audio(stream, chunk)
        frames.append(backend.generate_chunk(stream))
    return frames


# ---- start-up ------------------------------------------------------------------------------------------------

def test_missing_repository_fails_with_remedy(tmp_path: Path) -> None:
    make_checkpoints(tmp_path)
    backend = create_backend(config(tmp_path, repo_dir=tmp_path / "nowhere"))
    with pytest.raises(BackendError) as caught:
        backend.load()
    assert "repository is not at" in caught.value.message and "nowhere" in caught.value.message
    remedy = caught.value.remedy or ""
    assert "flashhead provision" in remedy and "FLASHHEAD_REPO_DIR" in remedy


@pytest.mark.parametrize("model_type", ["lite", "pro"])
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


def test_missing_gpu_fails_with_remedy(tmp_path: Path) -> None:
    make_checkpoints(tmp_path)
    backend = create_backend(config(tmp_path, device="cuda"))
    with pytest.raises(BackendError) as caught:
        backend.load()
    assert "torch is not installed" in caught.value.message or "no CUDA GPU" in caught.value.message


def test_random_weights_mode_is_announced(tmp_path: Path) -> None:
    backend = create_backend(config(tmp_path, weights="random"))
    facts = backend.info()
    assert facts["weights"] == "random" and "noise" in facts["warning"]
    checkpoints = create_backend(config(tmp_path)).info()
    assert checkpoints["weights"] == "checkpoints" and "warning" not in checkpoints


def test_load_uses_flashheads_pipeline_and_compile_switches(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    make_checkpoints(tmp_path)
    # torch exports its default cache dir into the environment; an inherited one must not win.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor_inherited")
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    backend = create_backend(config(tmp_path, compile=True, compile_cache_dir=tmp_path / "cc"))
    assert isinstance(backend, FlashheadBackend)
    backend.load()
    assert backend.pipeline.compiled == (True, True)
    facts = backend.info()
    assert facts["engine"] == "pipeline"  # no torch model: FlashHead's own per-chunk API
    assert facts["cuda_graphs"] is False and facts["jpeg_on_device"] is False and not backend.encodes_jpeg
    assert (tmp_path / "cc" / "inductor").is_dir() and (tmp_path / "cc" / "triton").is_dir()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cc" / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "cc" / "triton")


def test_compile_off_leaves_the_flashhead_switches_off(tmp_path: Path) -> None:
    make_checkpoints(tmp_path)
    backend = create_backend(config(tmp_path, compile=False))
    assert isinstance(backend, FlashheadBackend)
    backend.load()
    assert backend.pipeline.compiled == (False, False)


@pytest.mark.parametrize(("model_type", "geometry"), [("lite", LITE), ("pro", PRO)])
def test_chunk_geometry_matches_flashhead(tmp_path: Path, model_type: str, geometry: object) -> None:
    make_checkpoints(tmp_path, model_type)
    backend = create_backend(config(tmp_path, model_type=model_type))
    assert isinstance(backend, FlashheadBackend)
    backend.load()
    assert backend.geometry == geometry
    assert backend.params["motion_frames_num"] == geometry.motion_frames  # type: ignore[attr-defined]
    stream = backend.new_stream(backend.prepare_avatar(face_image()), seed=1)
    backend.encode_audio(stream, audio_chunks(2, 0, geometry.samples_per_chunk)[0])  # type: ignore[attr-defined]
    frames = backend.generate_chunk(stream)
    assert frames.shape == (geometry.new_frames, 512, 512, 3) and frames.dtype == np.uint8  # type: ignore[attr-defined]


# ---- per-stream state ------------------------------------------------------------------------------------------

def test_second_stream_does_not_disturb_the_first(tmp_path: Path, backend: FlashheadBackend) -> None:
    image_a, image_b = face_image(), face_image(400, 300)[:, ::-1].copy()
    chunks_a, chunks_b = audio_chunks(4, 1), audio_chunks(4, 2)
    alone = run_alone(backend, image_a, chunks_a, seed=7)

    avatar_a, avatar_b = backend.prepare_avatar(image_a), backend.prepare_avatar(image_b)
    a, b = backend.new_stream(avatar_a, 7), backend.new_stream(avatar_b, 8)
    together = []
    for chunk_a, chunk_b in zip(chunks_a, chunks_b, strict=True):
        backend.encode_audio(b, chunk_b)
        backend.generate_chunk(b)
        backend.encode_audio(a, chunk_a)
        together.append(backend.generate_chunks([b, a][1:])[0])
        backend.encode_audio(b, chunk_b[::-1].copy())
        backend.generate_chunk(b)
    assert len(together) == len(alone) == 4
    for mine, reference in zip(together, alone, strict=True):
        np.testing.assert_array_equal(mine, reference)


def test_batched_call_equals_one_by_one(backend: FlashheadBackend) -> None:
    image = face_image()
    a = backend.new_stream(backend.prepare_avatar(image), 3)
    b = backend.new_stream(backend.prepare_avatar(image), 4)
    reference_a = run_alone(backend, image, audio_chunks(2, 5), seed=3)
    reference_b = run_alone(backend, image, audio_chunks(2, 6), seed=4)
    for index, (chunk_a, chunk_b) in enumerate(zip(audio_chunks(2, 5), audio_chunks(2, 6), strict=True)):
        backend.encode_audio(a, chunk_a)
        backend.encode_audio(b, chunk_b)
        frames_a, frames_b = backend.generate_chunks([a, b])
        np.testing.assert_array_equal(frames_a, reference_a[index])
        np.testing.assert_array_equal(frames_b, reference_b[index])


def test_seed_and_audio_drive_the_frames(backend: FlashheadBackend) -> None:
    image, chunks = face_image(), audio_chunks(2, 1)
    first = run_alone(backend, image, chunks, seed=11)
    again = run_alone(backend, image, chunks, seed=11)
    other_seed = run_alone(backend, image, chunks, seed=12)
    other_audio = run_alone(backend, image, audio_chunks(2, 9), seed=11)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other_seed[1])
    assert not np.array_equal(first[1], other_audio[1])


def test_audio_ring_keeps_the_last_eight_seconds(backend: FlashheadBackend) -> None:
    stream = backend.new_stream(backend.prepare_avatar(face_image()), 0)
    assert stream.ring.shape == (8 * 16000,) and not stream.ring.any()
    chunks = audio_chunks(10, 3)
    for chunk in chunks:
        backend.encode_audio(stream, chunk)
    expected = np.concatenate(chunks)[-8 * 16000:]
    np.testing.assert_array_equal(stream.ring, expected)
    backend.clear_audio(stream)
    assert not stream.ring.any() and stream.embedding is None
    with pytest.raises(ValueError, match="expected 15360 samples"):
        backend.encode_audio(stream, np.zeros(100, np.float32))


def test_motion_state_carries_over_between_chunks(backend: FlashheadBackend) -> None:
    stream = backend.new_stream(backend.prepare_avatar(face_image()), 0)
    initial = stream.motion.copy()
    assert initial.shape[1] == 1  # FlashHead starts from the reference latent's first frame
    backend.encode_audio(stream, audio_chunks(1, 1)[0])
    backend.generate_chunk(stream)
    assert stream.motion.shape[1] == 2 and stream.chunks == 1  # 9 motion frames -> 2 latent frames


def test_avatars_are_released_and_bad_images_refused(backend: FlashheadBackend) -> None:
    avatar = backend.prepare_avatar(face_image())
    assert avatar.name in backend.pipeline.ref_img_latent_dict
    backend.release_avatar(avatar)
    assert avatar.name not in backend.pipeline.ref_img_latent_dict
    with pytest.raises(BadInput):
        backend.prepare_avatar(np.zeros((10, 10), np.uint8))


def test_warm_up_leaves_no_state_behind(backend: FlashheadBackend) -> None:
    backend.warm_up()
    assert backend.pipeline.generate_calls == 2
    assert not backend.pipeline.ref_img_latent_dict or all(
        not name.startswith("avatar") for name in backend.pipeline.ref_img_latent_dict)
    assert backend.timings["warm_up_s"] >= 0


# ---- through the real server -----------------------------------------------------------------------------------

def test_server_streams_flashhead_frames(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    from inference.client import FlashheadClient

    from .conftest import encode_image

    make_checkpoints(tmp_path)
    server = server_factory({"FLASHHEAD_BACKEND": "flashhead", "FLASHHEAD_DEVICE": "cpu",
                             "FLASHHEAD_MODEL_ROOT": str(tmp_path), "FLASHHEAD_REPO_DIR": str(FAKE_REPO),
                             "FLASHHEAD_CHECKPOINT_DIR": str(tmp_path / "models")})
    info = server.info()
    assert info["backend"] == "flashhead" and info["backend_info"]["engine"] == "pipeline"
    pcm = speech_like(LITE.chunk_seconds * 3).tobytes()

    async def stream() -> int:
        async with FlashheadClient(server.url) as client:
            result = await client.stream_audio(pcm, image=encode_image(face_image(), "PNG"), output="rgb")
            return len(result.frames)

    assert asyncio.run(stream()) == 3 * LITE.new_frames


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
