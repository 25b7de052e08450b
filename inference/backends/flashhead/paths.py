"""Where the flashhead backend finds FlashHead's repository, its checkpoints and the compile cache.

Every path comes from the server's config and inference/layout.py (the one owner of the model_root
layout, checkpoint folder names included); this module only names the DiT and VAE folders inside
FlashHead's checkpoints, as FlashHead's loaders expect them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inference import layout

if TYPE_CHECKING:
    from inference.config import ServerConfig

# model type -> (DiT folder, VAE folder) inside the checkpoints, as FlashHeadPipeline reads them
MODEL_DIRS = {"lite": ("Model_Lite", "VAE_LTX"), "pro": ("Model_Pro", "VAE_Wan")}


@dataclass(frozen=True)
class FlashheadPaths:
    """The cloned repository, the checkpoints (DiT + VAE, wav2vec2) and the compile cache."""

    repo: Path
    checkpoints: Path  # holds Model_Lite/ VAE_LTX/ (or Model_Pro/ VAE_Wan/)
    wav2vec: Path
    compile_cache: Path

    @classmethod
    def from_config(cls, config: ServerConfig) -> FlashheadPaths:
        models = config.resolved_checkpoint_dir
        return cls(config.resolved_repo_dir, Path(layout.checkpoints(models)), Path(layout.wav2vec(models)),
                   config.resolved_compile_cache_dir)

    def missing_checkpoints(self, model_type: str) -> list[str]:
        """Checkpoint folders (or their config.json) that are absent for `model_type`."""
        model_dir, vae_dir = MODEL_DIRS[model_type]
        wanted = [self.checkpoints / model_dir / "config.json", self.checkpoints / vae_dir,
                  self.wav2vec / "config.json"]
        return [str(path) for path in wanted if not path.exists()]
