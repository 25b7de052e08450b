"""FP8 (e4m3) matrix products for the DiT's linear layers: FLASHHEAD_DIT_DTYPE=fp8, opt-in.

Hopper (the H100/H200) and Ada (the RTX 4090) have FP8 tensor cores at twice their bf16 rate. Each
linear layer inside the DiT blocks (self- and cross-attention q, k, v, o and the two FFN layers, about
nine tenths of the DiT's arithmetic) keeps its weight in e4m3 with one scale per output channel; its
input is scaled per row on the fly (the row's absolute maximum maps to e4m3's 448) and the product
runs through `torch._scaled_mm` with float32 accumulation, out in the model's dtype. Everything else
(embeddings, norms, attention, the head, the VAE) stays in bf16.

The output deviates from bf16 by FP8's rounding (3 mantissa bits): benchmarks/gpu_levers.py reports
it per frame on the same weights, inputs and seed. bf16 stays the default until that deviation is
judged on the released checkpoints, not only on random weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from inference.errors import BackendError

E4M3 = torch.float8_e4m3fn
E4M3_MAX = float(torch.finfo(E4M3).max)  # 448
MIN_CAPABILITY = (8, 9)  # Ada and Hopper: the first GPUs with FP8 tensor cores
# Inside each DiT block: the layers converted (the rest of the model is small or not a plain matmul).
BLOCK_LINEARS = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o",
                 "cross_attn.q", "cross_attn.k", "cross_attn.v", "cross_attn.o", "ffn.0", "ffn.2")


class Float8Linear(nn.Module):
    """`nn.Linear` with an e4m3 weight (per output channel scale) and per-row dynamic input scaling."""

    weight: torch.Tensor
    weight_scale: torch.Tensor

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach()
        if weight.shape[0] % 16 or weight.shape[1] % 16:
            raise ValueError(f"FP8 products need both dimensions divisible by 16, not {tuple(weight.shape)}")
        amax = weight.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
        self.out_dtype = weight.dtype
        # (out, in) row-major; `.t()` at use is the column-major (in, out) operand _scaled_mm wants.
        self.register_buffer("weight", (weight.float() * (E4M3_MAX / amax)).to(E4M3))
        self.register_buffer("weight_scale", (amax / E4M3_MAX).t().contiguous())  # (1, out) float32
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        amax = rows.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12)
        quantized = (rows.float() * (E4M3_MAX / amax)).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
        if quantized.device.type == "cuda":
            out = torch._scaled_mm(quantized, self.weight.t(), scale_a=amax / E4M3_MAX, scale_b=self.weight_scale,
                                   out_dtype=self.out_dtype)
        else:  # torch's CPU _scaled_mm takes one scale per tensor only (torch 2.11): the same product in float32
            product = quantized.float() @ self.weight.float().t()
            out = (product * (amax / E4M3_MAX) * self.weight_scale).to(self.out_dtype)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def check_fp8_device(device: str) -> None:
    """Refuse at start-up, with the remedy, a GPU without FP8 tensor cores (the CPU computes it, for tests)."""
    if not device.startswith("cuda"):
        return
    capability = torch.cuda.get_device_capability(torch.device(device))
    if capability < MIN_CAPABILITY:
        raise BackendError(
            f"FLASHHEAD_DIT_DTYPE=fp8 needs FP8 tensor cores (compute capability 8.9+: RTX 4090, L4, H100, H200); "
            f"{torch.cuda.get_device_name(torch.device(device))} is {capability[0]}.{capability[1]}",
            "set FLASHHEAD_DIT_DTYPE=bf16 (the default)")


def quantize_dit(model: Any) -> int:
    """Replace the DiT blocks' linear layers with Float8Linear in place; the number replaced."""
    replaced = 0
    for block in model.blocks:
        for dotted in BLOCK_LINEARS:
            owner_path, _, name = dotted.rpartition(".")
            owner = block.get_submodule(owner_path)
            layer = getattr(owner, name) if not name.isdigit() else owner[int(name)]
            if not isinstance(layer, nn.Linear):
                raise BackendError(f"FLASHHEAD_DIT_DTYPE=fp8: the DiT's {dotted} is a {type(layer).__name__}, "
                                   "not a linear layer", "set FLASHHEAD_DIT_DTYPE=bf16, or use the pinned FlashHead")
            fp8 = Float8Linear(layer)
            if name.isdigit():
                owner[int(name)] = fp8
            else:
                setattr(owner, name, fp8)
            replaced += 1
    return replaced
