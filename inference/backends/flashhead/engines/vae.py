"""The fast engine's view of FlashHead's two VAEs: decode a batch of latents, encode motion frames.

FlashHead's pipeline calls `vae.decode(latent)` / `vae.encode(frames)` one stream at a time; the
fast engine goes one level down to run a whole batch in one call, and that level differs per VAE:

- Lite, LTX `LtxVAE` (stride 8 x 32 x 32, 128 channels): decode `model.decode(un_normalize_latents(z))`;
  motion re-encode samples the posterior, then `normalize_latents`.
- Pro, Wan 2.1 `WanVAE` (stride 4 x 8 x 8, 16 channels): decode `model.decode(z, scale)`, clamped to
  [-1, 1]; motion re-encode `model.encode(x, scale)`, the posterior mean (nothing sampled).

`codec_for` picks the codec for a model type and checks at start-up that the loaded VAE has every
method the codec calls, so a model type the engine cannot serve fails with a remedy before any
chunk runs (never as an AttributeError at warm-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import torch

from inference.errors import BackendError


class LatentCodec(Protocol):
    """Batched decode and motion re-encode for one FlashHead VAE."""

    name: str

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, F, h, w) latents -> (B, 3, T, H, W) frames in [-1, 1]."""

    def encode_motion(self, frames: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """(B, 3, t, H, W) motion frames -> (B, C, f, h, w) latents; each stream samples with its generator."""


class LtxCodec:
    """Lite: FlashHead's LTX VAE (`LtxVAE`: normalised latents, a sampled posterior)."""

    name = "ltx"
    calls: ClassVar[tuple[str, ...]] = ("model.decode", "model.encode", "normalize_latents", "un_normalize_latents")

    def __init__(self, vae: Any, compile: bool):
        self.vae = vae  # FlashHead compiles model.encode / model.decode itself (COMPILE_VAE)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.vae
        return vae.model.decode(vae.un_normalize_latents(latents), return_dict=False, target_shape=latents.shape)[0]

    def encode_motion(self, frames: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        posterior = self.vae.model.encode(frames, return_dict=False)[0]
        return self.vae.normalize_latents(posterior.sample(generator=generators))


class WanCodec:
    """Pro: Wan 2.1's VAE (`WanVAE`: its own mean/std scale, deterministic encode)."""

    name = "wan"
    calls: ClassVar[tuple[str, ...]] = ("model.decode", "model.encode", "scale")

    def __init__(self, vae: Any, compile: bool):
        self.vae = vae
        # FlashHead compiles the per-stream wrappers (vae.decode / vae.encode); the batch goes one level down.
        self._decode: Callable[..., torch.Tensor] = torch.compile(vae.model.decode) if compile else vae.model.decode
        self._encode: Callable[..., torch.Tensor] = torch.compile(vae.model.encode) if compile else vae.model.encode

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self._decode(latents, self.vae.scale).clamp_(-1, 1)

    def encode_motion(self, frames: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        return self._encode(frames, self.vae.scale)  # the posterior mean, as WanVAE.encode returns it


CODECS: dict[str, type[LtxCodec] | type[WanCodec]] = {"lite": LtxCodec, "pro": WanCodec}


def codec_for(model_type: str, vae: Any, compile: bool) -> LatentCodec:
    """The codec for `model_type`, after checking that `vae` has every method it calls."""
    codec = CODECS.get(model_type)
    remedy = ("set FLASHHEAD_ENGINE=pipeline (FlashHead's own per-chunk path serves every model type), "
              "or use the FlashHead commit pinned in playbooks/flashhead.yaml")
    if codec is None:
        raise BackendError(f"the fast engine cannot serve FlashHead {model_type}: no batched VAE path for it", remedy)
    missing = [call for call in codec.calls if not _has(vae, call)]
    if missing:
        raise BackendError(
            f"the fast engine cannot serve FlashHead {model_type}: its VAE ({type(vae).__name__}) has no "
            f"{', '.join(missing)} (the {codec.name} path needs {', '.join(codec.calls)})", remedy)
    return codec(vae, compile)


def _has(owner: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not hasattr(owner, part):
            return False
        owner = getattr(owner, part)
    return True
