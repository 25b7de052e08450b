"""The `pipeline` engine: FlashHead's own per-chunk API, one stream at a time.

Per chunk: `get_audio_embedding` over the stream's 8 s ring, then `run_pipeline`, exactly as
FlashHead's streaming script does, with the stream's reference latent, colour reference, motion
latents, generator and device RNG state swapped into the shared pipeline for the call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from inference.backends.flashhead.engines.base import (
    EngineSettings,
    FlashheadStream,
    LoadedFlashhead,
    device_rng,
    fresh_rng_state,
    require_audio,
    to_uint8_frames,
)


class PipelineEngine:
    """FlashHead's `get_audio_embedding` + `run_pipeline` per stream; serves every model type."""

    name = "pipeline"
    cuda_graphs = False
    encodes_jpeg = False

    def __init__(self, flashhead: LoadedFlashhead, settings: EngineSettings):
        self.fh = flashhead.module
        self.pipeline = flashhead.pipeline
        params = flashhead.params
        self.audio_end = params["cached_audio_duration"] * params["tgt_fps"]
        self.audio_start = self.audio_end - params["frame_num"]
        self.motion_frames = params["motion_frames_num"]
        self.device = str(self.pipeline.device)

    def new_stream(self, stream: FlashheadStream) -> None:
        stream.rng_state = fresh_rng_state(self.device, stream.seed)

    def encode_audio(self, stream: FlashheadStream) -> None:
        stream.embedding = self.fh.get_audio_embedding(self.pipeline, stream.ring, self.audio_start, self.audio_end)
        stream.audio_fed = True

    def generate(self, streams: list[FlashheadStream]) -> list[np.ndarray]:
        require_audio(streams)
        return [self._one(stream) for stream in streams]

    def start_frames(self, streams: list[FlashheadStream]) -> Callable[[], list[np.ndarray]]:
        frames = self.generate(streams)  # FlashHead's loop copies each stream's frames itself
        return lambda: frames

    def start_jpeg(self, streams: list[FlashheadStream], quality: int) -> Callable[[], list[list[bytes]]]:
        raise NotImplementedError("the pipeline engine does not encode JPEG")

    def warm_up_sizes(self, max_batch: int) -> list[int]:
        return [1]

    def _one(self, stream: FlashheadStream) -> np.ndarray:
        p = self.pipeline
        p.ref_img_latent = stream.avatar.latent
        p.original_color_reference = stream.avatar.color_reference
        p.latent_motion_frames = stream.motion
        p.generator = stream.generator
        with device_rng(stream, self.device):
            video = self.fh.run_pipeline(p, stream.embedding)
        stream.motion = p.latent_motion_frames
        stream.embedding = None
        stream.audio_fed = False
        return to_uint8_frames(video[self.motion_frames:])
