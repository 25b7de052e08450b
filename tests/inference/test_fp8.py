"""FLASHHEAD_DIT_DTYPE=fp8: the DiT blocks' linear layers as FP8 products (engines/fp8.py).

On CPU the layer computes the GPU's e4m3 product in float32 (torch's CPU `_scaled_mm` takes one scale
per tensor only, as of torch 2.11; the test below holds the two to each other where the scales are one
per tensor), so the layer's arithmetic, the conversion of FlashHead's (fake) DiT, every model type x
engine serving with it, and the start-up refusals are all checked here. Speed and the deviation on the
real model: benchmarks/gpu_levers.py on the GPU (docs/gpu.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the flashhead backend runs torch modules (CI installs the CPU build)")

from inference.backends.flashhead.engines import DIT_DTYPES  # noqa: E402
from inference.backends.flashhead.engines.fp8 import BLOCK_LINEARS, Float8Linear, quantize_dit  # noqa: E402
from inference.config import ConfigError, from_env  # noqa: E402
from inference.errors import BackendError  # noqa: E402

from .conftest import face_image  # noqa: E402
from .test_flashhead import CASES, config, fresh_fake, loaded, make_checkpoints, run_streams  # noqa: E402, F401


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize(("rows", "inputs", "outputs"), [(1, 16, 16), (7, 48, 64), (130, 64, 48), (33, 256, 160)])
@pytest.mark.parametrize("bias", [True, False])
def test_fp8_layer_computes_the_linear_within_e4m3_rounding(dtype: torch.dtype, rows: int, inputs: int,
                                                            outputs: int, bias: bool) -> None:
    generator = torch.Generator().manual_seed(rows * inputs + outputs)
    linear = torch.nn.Linear(inputs, outputs, bias=bias).to(dtype)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * 0.05)
    x = torch.randn((2, rows, inputs), generator=generator).to(dtype)
    x[0, 0] *= 1000  # one loud row: per-row scales keep the others' precision
    fp8 = Float8Linear(linear)
    with torch.no_grad():
        expected, got = linear(x), fp8(x)
    assert got.shape == expected.shape and got.dtype == dtype
    error = relative_l2(got, expected)
    assert 1e-4 < error < 0.06, error  # quantised (not a bf16 pass-through), within e4m3's 3 mantissa bits
    assert relative_l2(got[1], expected[1]) < 0.06  # quiet rows keep their precision beside the loud one
    assert fp8.weight.dtype == torch.float8_e4m3fn


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_fp8_layer_on_cpu_computes_what_scaled_mm_computes(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(7)
    linear = torch.nn.Linear(64, 48, bias=False).to(dtype)
    weight = torch.randn((48, 64), generator=generator) * 0.05
    weight[:, 0] = 0.2  # every output channel's absolute maximum is 0.2: one weight scale for the tensor
    x = torch.randn((5, 64), generator=generator)
    x[:, 1] = 3.0  # and every row's is 3.0: one input scale
    with torch.no_grad():
        linear.weight.copy_(weight)
    fp8 = Float8Linear(linear)
    x = x.to(dtype)
    quantized = (x.float() * (448.0 / 3.0)).to(torch.float8_e4m3fn)
    expected = torch._scaled_mm(quantized, fp8.weight.t(), scale_a=torch.tensor(3.0 / 448.0),
                                scale_b=fp8.weight_scale[0, :1].reshape(()), out_dtype=dtype)
    with torch.no_grad():
        got = fp8(x)
    assert got.dtype == dtype and relative_l2(got, expected) < 1e-2


def test_fp8_layer_maps_zero_rows_to_zero() -> None:
    fp8 = Float8Linear(torch.nn.Linear(32, 16, bias=False))
    with torch.no_grad():
        out = fp8(torch.zeros(3, 32))
    assert torch.equal(out, torch.zeros(3, 16))


@pytest.mark.parametrize("shape", [(48, 20), (20, 48), (17, 17)])
def test_fp8_layer_refuses_dimensions_the_tensor_cores_cannot_take(shape: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        Float8Linear(torch.nn.Linear(shape[1], shape[0]))


@pytest.mark.parametrize(("model_type", "engine"), CASES)
def test_every_engine_serves_every_model_type_in_fp8(tmp_path: Path, model_type: str, engine: str) -> None:
    """The converted DiT serves: frames of the right geometry, near FlashHead's bf16 frames, not equal."""
    images, seeds = [face_image()], [3]
    reference = run_streams(loaded(tmp_path, model_type, engine), images, seeds, chunks=2, batched=False)
    backend = loaded(tmp_path, model_type, engine, dit_dtype="fp8")
    model = backend.pipeline.model
    model = getattr(model, "_orig_mod", model)
    converted = [m for m in model.modules() if isinstance(m, Float8Linear)]
    assert len(converted) == len(model.blocks) * len(BLOCK_LINEARS)
    assert backend.info()["dit_dtype"] == "fp8"
    frames = run_streams(backend, images, seeds, chunks=2, batched=False)
    for got, expected in zip(frames[0], reference[0], strict=True):
        assert got.shape == expected.shape and got.dtype == np.uint8
        difference = np.abs(got.astype(np.int16) - expected.astype(np.int16))
        assert 0 < difference.mean() < 8, difference.mean()  # FP8 rounding, not different content


def test_quantize_refuses_a_dit_whose_layer_is_not_linear(tmp_path: Path) -> None:
    backend = loaded(tmp_path)
    model = backend.pipeline.model
    model = getattr(model, "_orig_mod", model)
    model.blocks[0].ffn[0] = torch.nn.Identity()
    with pytest.raises(BackendError, match=r"ffn\.0 is a Identity") as caught:
        quantize_dit(model)
    assert "FLASHHEAD_DIT_DTYPE=bf16" in (caught.value.remedy or "")


def test_a_gpu_without_fp8_tensor_cores_is_refused_at_start_up(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from inference.backends import create_backend

    make_checkpoints(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A10G")
    backend = create_backend(config(tmp_path, device="cuda", dit_dtype="fp8"))
    with pytest.raises(BackendError, match=r"A10G is 8\.6") as caught:
        backend.check()
    assert caught.value.remedy == "set FLASHHEAD_DIT_DTYPE=bf16 (the default)"


@pytest.mark.parametrize("value", ["fp16", "FP8", "float8", "e4m3"])
def test_an_unknown_dit_dtype_is_refused_with_the_choices(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"FLASHHEAD_DIT_DTYPE": value})
    assert "FLASHHEAD_DIT_DTYPE" in caught.value.message
    assert all(choice in (caught.value.remedy or "") for choice in DIT_DTYPES)


def test_bf16_is_the_default() -> None:
    assert from_env({}).dit_dtype == "bf16"
