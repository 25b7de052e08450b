"""FlashHead's architectures and the `weights: random` mode (a capacity probe before checkpoints exist).

The configurations below are the released models' exact shapes, checked by parameter count:
`WanModelAudioProject(**ARCHITECTURES["lite"])` holds 1,526,864,256 elements (Model_Lite's
safetensors) and `["pro"]` 1,507,694,912 (Model_Pro). They differ only where the VAE does: Lite
pairs with FlashHead's LTX `CausalVideoAutoencoder` (128 latent channels, stride 8x32x32), Pro with
the Wan 2.1 VAE (16 channels, stride 4x8x8, 2x2 patches), which also widens the audio projection's
per-latent window (`audio_window + vae_stride[0] - 1` frames).

`random_weights(...)` swaps FlashHead's loaders for constructors of the same classes with fresh
random parameters, for the duration of a `FlashHeadPipeline(...)` call: the compute (and so the
timing) is the real model's, the frames are noise. Nothing in the cloned repository is modified.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

_COMMON: dict[str, Any] = {
    "dim": 1536, "ffn_dim": 8960, "text_dim": 4096, "freq_dim": 256, "eps": 1e-6,
    "num_heads": 12, "num_layers": 30, "has_image_input": False,
}

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "lite": {**_COMMON, "in_dim": 256, "out_dim": 128, "vae_stride": (8, 32, 32), "patch_size": (1, 1, 1)},
    "pro": {**_COMMON, "in_dim": 32, "out_dim": 16, "vae_stride": (4, 8, 8), "patch_size": (1, 2, 2)},
}

# Element counts of the released checkpoints (Model_Lite / Model_Pro safetensors).
PARAMETERS: dict[str, int] = {"lite": 1_526_864_256, "pro": 1_507_694_912}

LTX_LATENT_CHANNELS = 128


def parameter_count(model: Any) -> int:
    """Elements in a module's parameters."""
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def random_weights(model_type: str, device: str) -> Iterator[None]:
    """Within the block, FlashHead's loaders build its real classes with random parameters on `device`.

    Patches (and restores) `WanModelAudioProject.from_pretrained`, `CausalVideoAutoencoder.from_pretrained`
    (Lite), `flash_head.wan.modules.vae._video_vae` (Pro), FlashHead's `Wav2Vec2Model.from_pretrained`
    (default `Wav2Vec2Config()`, the shape of wav2vec2-base-960h) and `Wav2Vec2FeatureExtractor.from_pretrained`
    (its defaults equal wav2vec2-base-960h's preprocessor config).
    """
    import torch
    from flash_head.audio_analysis.wav2vec2 import Wav2Vec2Model
    from flash_head.src.modules.flash_head_model import WanModelAudioProject
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor

    arch = ARCHITECTURES[model_type]

    def dit(cls: type, *_args: Any, **_kwargs: Any) -> Any:
        with torch.device(device):
            return cls(**arch).eval()

    def wav2vec(cls: type, *_args: Any, **_kwargs: Any) -> Any:
        with torch.device(device):
            return cls(Wav2Vec2Config()).eval()  # from_pretrained returns eval mode (no dropout/LayerDrop)

    def extractor(cls: type, *_args: Any, **_kwargs: Any) -> Any:
        return cls()

    patches: list[tuple[Any, str, Any]] = [
        (WanModelAudioProject, "from_pretrained", classmethod(dit)),
        (Wav2Vec2Model, "from_pretrained", classmethod(wav2vec)),
        (Wav2Vec2FeatureExtractor, "from_pretrained", classmethod(extractor)),
    ]
    if model_type == "lite":
        from flash_head.ltx_video.models.autoencoders.causal_video_autoencoder import CausalVideoAutoencoder

        def ltx(cls: type, *_args: Any, **_kwargs: Any) -> Any:
            return random_ltx_vae(device)

        patches.append((CausalVideoAutoencoder, "from_pretrained", classmethod(ltx)))
    else:
        import flash_head.wan.modules.vae as wan_vae

        def video_vae(pretrained_path: Any = None, z_dim: Any = None, device: Any = "cpu",
                      dtype: Any = torch.float, **kwargs: Any) -> Any:
            cfg = {"dim": 96, "z_dim": z_dim, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                   "attn_scales": [], "temperal_downsample": [False, True, True], "dropout": 0.0, **kwargs}
            with torch.device(_device_of(device)):
                return wan_vae.WanVAE_(**cfg)

        patches.append((wan_vae, "_video_vae", video_vae))
    saved = [(owner, name, owner.__dict__[name] if name in owner.__dict__ else getattr(owner, name))
             for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def random_ltx_vae(device: str) -> Any:
    """FlashHead's LTX VAE from its own config with random parameters and the two statistic buffers."""
    import torch
    from flash_head.ltx_video.models.autoencoders.causal_video_autoencoder import CausalVideoAutoencoder
    from flash_head.ltx_video.utils.diffusers_config_mapping import OURS_VAE_CONFIG

    with torch.device(device):
        vae = CausalVideoAutoencoder.from_config(copy.deepcopy(OURS_VAE_CONFIG))
        vae.register_buffer("std_of_means", torch.ones(LTX_LATENT_CHANNELS))
        vae.register_buffer("mean_of_means", torch.zeros(LTX_LATENT_CHANNELS))
    return vae


def _device_of(device: Any) -> str:
    return str(device) if device is not None else "cpu"
