"""The engines that run a FlashHead chunk: FLASHHEAD_ENGINE picks one (this dict is the one list).

- `pipeline` (engines/pipeline.py): FlashHead's own per-chunk API, one stream at a time.
- `fast` (engines/fast.py): the same modules and weights, batched over streams, without the
  host-side overheads of FlashHead's loop.
`auto` is `fast` where FlashHead's model is a torch module, else `pipeline`.
"""

from __future__ import annotations

# name -> "module:class"
ENGINES: dict[str, str] = {
    "fast": "inference.backends.flashhead.engines.fast:FastEngine",
    "pipeline": "inference.backends.flashhead.engines.pipeline:PipelineEngine",
}
ENGINE_CHOICES: tuple[str, ...] = ("auto", *ENGINES)
# What the compiled fast engine hands to torch.compile: one DiT block reused 30 times, or the whole DiT step.
COMPILE_SCOPES: tuple[str, ...] = ("blocks", "model")
DEFAULT_COMPILE_SCOPE = "blocks"  # the server's and the engine's default (measured: docs/gpu.md)
# The DiT blocks' linear layers: FlashHead's own bf16, or FP8 products (engines/fp8.py, opt-in).
DIT_DTYPES: tuple[str, ...] = ("bf16", "fp8")
DEFAULT_DIT_DTYPE = "bf16"
