"""The `fast` engine: FlashHead's modules and weights, batched across streams.

FlashHead's own loop spends a large share of each chunk around the model (a `deque` of Python
floats turned into an array, the feature normaliser in NumPy, frames copied to the host as
float32). This engine keeps the same computation and removes that overhead:

- audio: every stream's 8 s ring buffer goes to the GPU once per chunk; the wav2vec2 feature
  normalisation runs there; wav2vec2 encodes all streams of a batch in one call;
- denoise: the chunks of B streams are stacked on the batch axis (noise, reference latents, audio
  embeddings; the timestep is shared) through `_forward`, a batch-capable rendering of
  `WanModelAudioProject.forward` over the model's own submodules (FlashHead's forward assumes batch
  1 in its RoPE and audio cross-attention reshapes). Each stream draws its noise from its own
  generator, in FlashHead's order, and keeps its own motion latents;
- decode, colour correction and motion re-encode run batched through the model type's VAE codec
  (engines/vae.py: LTX for Lite, Wan 2.1 for Pro); Lite's VAE posterior sample draws from a
  per-stream generator seeded like the device RNG the pipeline engine swaps in;
- frames become uint8 on the GPU and cross to the host in one copy, or are JPEG-encoded there
  (nvJPEG through torchvision) so only the JPEG bytes cross; the copy (or the encoding) is a call of
  its own (`start_frames`, `start_jpeg`) that the server runs on its output thread while the next
  chunk computes;
- compiled, the DiT replays as CUDA graphs, one per batch size (recorded by the backend's
  `warm_up` for the sizes `warm_up_sizes` names). Inductor launches its kernels from Python,
  about 2,000 a chunk; every launch gives up the GIL and waits to get it back from the server's
  other threads: a batch of 8 took 1.02 s inside the server against 0.58 s alone. A replay is one
  launch (now 0.57 s inside the server).

For one stream the result equals FlashHead's `run_pipeline` within bf16 rounding
(benchmarks/gpu_batching.py checks it on the GPU, and batched vs one-by-one for B = 2..).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from einops import rearrange

from inference.backends.flashhead.engines.base import (
    EngineSettings,
    FlashheadStream,
    LoadedFlashhead,
    require_audio,
)
from inference.backends.flashhead.engines.vae import LatentCodec, codec_for

log = logging.getLogger("inference.flashhead")
_NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor's zero-mean unit-variance normalisation
JpegEncoder = Callable[..., list[torch.Tensor]]
T = TypeVar("T")


class FastEngine:
    """Batched chunk generation over a loaded FlashHeadPipeline, for Lite and Pro."""

    name = "fast"

    def __init__(self, flashhead: LoadedFlashhead, settings: EngineSettings):
        from flash_head.src.modules import flash_head_model
        from flash_head.utils.utils import match_and_blend_colors_torch

        self.p = p = flashhead.pipeline
        self.codec: LatentCodec = codec_for(flashhead.model_type, p.vae, settings.compile)
        self.model = getattr(p.model, "_orig_mod", p.model)  # the module under FlashHead's torch.compile
        self.attention = flash_head_model.flash_attention
        self.sinusoidal = flash_head_model.sinusoidal_embedding_1d
        self.color_match = match_and_blend_colors_torch
        self.device = torch.device(p.device)
        self.dtype = p.param_dtype
        params = flashhead.params
        self.video_length = params["cached_audio_duration"] * params["tgt_fps"]  # wav2vec2 frames of the ring
        end, start = self.video_length, self.video_length - params["frame_num"]
        window = torch.arange(start, end)[:, None] + (torch.arange(5) - 2)[None, :]
        self.window = window.clamp(0, end - 1).to(self.device)
        self.motion_frames = params["motion_frames_num"]
        self.color_strength = params["color_correction_strength"]
        config = self.model.config
        frames = (params["frame_num"] - 1) // config.vae_stride[0] + 1
        self.latent_shape = (config.out_dim, frames, params["height"] // config.vae_stride[1],
                             params["width"] // config.vae_stride[2])
        self.model.freqs = self.model.freqs.to(self.device)
        patch = config.patch_size
        grid = (frames // patch[0], self.latent_shape[2] // patch[1], self.latent_shape[3] // patch[2])
        self.cos, self.sin = self._rope(grid)
        self.cuda_graphs = settings.compile and settings.cuda_graphs and self.device.type == "cuda"
        self.run_block: Callable[..., torch.Tensor] = self._block
        self.forward = self._compiled_forward(settings.compile_scope) if settings.compile else self._forward
        self.jpeg: JpegEncoder | None = _nvjpeg_encoder(self.device) if settings.jpeg_on_device else None
        self.encodes_jpeg = self.jpeg is not None

    def _compiled_forward(self, scope: str) -> Callable[..., torch.Tensor]:
        """The DiT step compiled whole, or (`blocks`) eager around one compiled block: the 30 blocks share
        its code, so dynamo traces it once and every block reuses the graph (one CUDA graph each)."""
        _stable_compile_cache()
        mode = "reduce-overhead" if self.cuda_graphs else None
        if scope == "blocks":
            self.run_block = torch.compile(self._block, mode=mode)
            return self._forward
        return torch.compile(self._forward, mode=mode)

    def warm_up_sizes(self, max_batch: int) -> list[int]:
        """Batch 1 and 2 compile the two graphs (static, batch-dynamic); CUDA graphs are one per size."""
        if max_batch == 1:
            return [1]
        return list(range(1, max_batch + 1)) if self.cuda_graphs else [1, 2]

    # ---- per-stream state ------------------------------------------------------------------------

    def new_stream(self, stream: FlashheadStream) -> None:
        stream.generator = torch.Generator(device=self.device).manual_seed(stream.seed)
        # FlashHead's LTX posterior samples from the global device RNG; here each stream has its own.
        stream.vae_generator = torch.Generator(device=self.device).manual_seed(stream.seed)

    def encode_audio(self, stream: FlashheadStream) -> None:
        stream.audio_fed = True  # the ring (already updated) is encoded with the batch in `generate`

    # ---- one batched chunk ---------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, streams: list[FlashheadStream]) -> list[np.ndarray]:
        """One chunk per stream: (new_frames, H, W, 3) uint8 frames on the host, one copy for the batch."""
        return self.start_frames(streams)()

    @torch.no_grad()
    def start_frames(self, streams: list[FlashheadStream]) -> Callable[[], list[np.ndarray]]:
        """One chunk per stream, computed now (its kernels queued on this thread's stream); the returned call
        copies the frames to the host. The server runs that call on another thread while this one computes the
        next chunk."""
        frames = self._frames(streams)
        return self._after_chunk(lambda: list(frames.cpu().numpy()))

    @torch.no_grad()
    def start_jpeg(self, streams: list[FlashheadStream], quality: int) -> Callable[[], list[list[bytes]]]:
        """`start_frames`, the returned call JPEG-encoding the frames on the device and copying only the files."""
        self._nvjpeg()  # before the chunk runs: a refused call changes no stream
        planar = _planar(self._frames(streams))
        return self._after_chunk(lambda: self._encode(planar, quality))

    def _after_chunk(self, finish: Callable[[], T]) -> Callable[[], T]:
        """`finish`, to run on another thread once the kernels this thread has queued so far are done."""
        if self.device.type != "cuda":
            return finish
        computed = torch.cuda.Event(blocking=True)  # waited for by a thread that sleeps rather than spins
        computed.record()

        def after() -> T:
            computed.synchronize()  # the finishing thread's stream (and torchvision's encoder) would not wait
            return finish()

        return after

    def encode_jpeg(self, frames: torch.Tensor, quality: int) -> list[list[bytes]]:
        """(B, T, H, W, 3) uint8 frames on the device -> B lists of T JPEG files (nvJPEG, one host copy)."""
        planar = _planar(frames)
        if planar.is_cuda:
            torch.cuda.current_stream(planar.device).synchronize()  # the encoder reads it without waiting
        return self._encode(planar, quality)

    def _encode(self, planar: torch.Tensor, quality: int) -> list[list[bytes]]:
        batch, count = planar.shape[:2]
        encoded = self._nvjpeg()([planar[b, t] for b in range(batch) for t in range(count)], quality=quality)
        if planar.is_cuda:
            # The files are written on the encoder's stream; torchvision 0.26 makes only the legacy default stream
            # wait for it (older releases the caller's stream): wait for that one before reading them.
            torch.cuda.default_stream(planar.device).synchronize()
        blob = torch.cat(encoded).cpu().numpy().tobytes()
        files, offset = [], 0
        for tensor in encoded:
            files.append(blob[offset: offset + tensor.numel()])
            offset += tensor.numel()
        return [files[b * count: (b + 1) * count] for b in range(batch)]

    def _nvjpeg(self) -> JpegEncoder:
        if self.jpeg is None:
            raise NotImplementedError("nvJPEG is not usable here: the fast engine returns raw frames")
        return self.jpeg

    def _frames(self, streams: list[FlashheadStream]) -> torch.Tensor:
        require_audio(streams)
        context = self.audio_embeddings(streams)
        latents = self.denoise(streams, context)
        frames = self.decode(streams, latents)
        for stream in streams:
            stream.audio_fed = False
        return frames

    def audio_embeddings(self, streams: list[FlashheadStream]) -> torch.Tensor:
        """(B, frame_num, 5, 12, 768): FlashHead's `get_audio_embedding` for each ring, batched."""
        rings = torch.from_numpy(np.stack([s.ring for s in streams])).to(self.device, non_blocking=True)
        mean = rings.mean(dim=1, keepdim=True)
        var = rings.var(dim=1, unbiased=False, keepdim=True)
        features = (rings - mean) / torch.sqrt(var + _NORM_EPS)
        out = self.p.audio_encoder(features, seq_len=self.video_length, output_hidden_states=True)
        hidden = torch.stack(out.hidden_states[1:], dim=2)  # B x frames x 12 x 768
        return hidden[:, self.window]

    def denoise(self, streams: list[FlashheadStream], context: torch.Tensor) -> torch.Tensor:
        """FlashHead's 4-step sampler for B streams at once; each stream's noise from its generator."""
        p = self.p
        noise = torch.stack([torch.randn(self.latent_shape, dtype=self.dtype, device=self.device,
                                         generator=s.generator) for s in streams])
        motion, mask = self._motion(streams)
        y = torch.stack([s.avatar.latent for s in streams])
        steps = len(p.timesteps) - 1
        for i in range(steps):
            noise = torch.where(mask, motion, noise)
            flow = self._step(noise, p.timesteps[i], context, y)
            t_i = (p.timesteps[i] / p.num_timesteps).to(self.dtype)
            t_next = (p.timesteps[i + 1] / p.num_timesteps).to(self.dtype)
            x_0 = noise - flow * t_i
            fresh = torch.stack([torch.randn(self.latent_shape, dtype=self.dtype, device=self.device,
                                             generator=s.generator) for s in streams])
            noise = (1 - t_next) * x_0 + t_next * fresh
        return torch.where(mask, motion, noise)

    def _step(self, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One DiT call. Its output lives in the CUDA graph's memory until the next replay overwrites it."""
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # the last step's output is used up: reuse its memory
        return self.forward(x, timestep, context, y)

    def _motion(self, streams: list[FlashheadStream]) -> tuple[torch.Tensor, torch.Tensor]:
        """The motion latents of each stream padded to the chunk, and where they apply."""
        batch = len(streams)
        motion = torch.zeros((batch, *self.latent_shape), dtype=self.dtype, device=self.device)
        mask = torch.zeros((batch, 1, self.latent_shape[1], 1, 1), dtype=torch.bool, device=self.device)
        for index, stream in enumerate(streams):
            count = stream.motion.shape[1]
            motion[index, :, :count] = stream.motion
            mask[index, :, :count] = True
        return motion, mask

    def decode(self, streams: list[FlashheadStream], latents: torch.Tensor) -> torch.Tensor:
        """VAE decode, colour correction, motion re-encode (all batched): (B, T, H, W, 3) uint8 on the device."""
        videos = self.codec.decode(latents)
        if self.color_strength > 0.0:
            reference = torch.cat([s.avatar.color_reference for s in streams])
            videos = self.color_match(videos, reference, self.color_strength)
        motion = self.codec.encode_motion(videos[:, :, -self.motion_frames:], [s.vae_generator for s in streams])
        for index, stream in enumerate(streams):
            stream.motion = motion[index]
        new = videos[:, :, self.motion_frames:].float()
        return (((new + 1) / 2).clamp(0, 1) * 255).permute(0, 2, 3, 4, 1).to(torch.uint8)

    # ---- the DiT, batch-capable --------------------------------------------------------------------

    def _forward(self, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                 y: torch.Tensor) -> torch.Tensor:
        """`WanModelAudioProject.forward` for a batch of B chunks (same weights, same arithmetic)."""
        m = self.model
        batch = x.shape[0]
        x = m.patch_embedding(torch.cat([x, y], dim=1))
        grid = tuple(x.shape[2:])
        x = rearrange(x, "b c f h w -> b (f h w) c").contiguous()
        t = m.time_embedding(self.sinusoidal(m.freq_dim, timestep.to(dtype=x.dtype)))
        t_mod = m.time_projection(t).unflatten(1, (6, m.dim))
        audio = self._audio_context(context.to(device=x.device, dtype=x.dtype)).to(x.dtype)
        for block in m.blocks:
            x = self.run_block(block, x, audio, t_mod, self.cos, self.sin)
        x = m.head(x, t.expand(batch, -1))
        return m.unpatchify(x, grid)

    def _audio_context(self, audio: torch.Tensor) -> torch.Tensor:
        """FlashHead's per-latent audio windows through its AudioProjModel (batch-generic as written)."""
        m = self.model
        first = audio[:, :1]
        latter = rearrange(audio[:, 1:], "b (n_latent n_frame) w s c -> b n_latent n_frame w s c",
                           n_frame=m.vae_scale)
        mid = m.audio_window // 2
        parts = [latter[:, :, :1, : mid + 1], latter[:, :, 1:-1, mid: mid + 1], latter[:, :, -1:, mid:]]
        latter = torch.cat([rearrange(part, "b n_latent n_f w s c -> b n_latent (n_f w) s c") for part in parts],
                           dim=2)
        return m.audio_proj(first, latter)

    def _block(self, block: Any, x: torch.Tensor, audio: torch.Tensor, t_mod: torch.Tensor,
               cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        e = (block.modulation.to(dtype=t_mod.dtype, device=t_mod.device) + t_mod).chunk(6, dim=1)
        x = x + self._self_attention(block.self_attn, block.norm1(x) * (1 + e[1]) + e[0], cos, sin) * e[2]
        batch, frames = x.shape[0], audio.shape[1]
        queries = rearrange(block.norm3(x), "b (f l) c -> (b f) l c", f=frames)
        cross = block.cross_attn(queries, audio.flatten(0, 1))
        x = x + rearrange(cross, "(b f) l c -> b (f l) c", b=batch)
        return x + block.ffn(block.norm2(x) * (1 + e[4]) + e[3]) * e[5]

    def _self_attention(self, attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s = int(x.shape[0]), int(x.shape[1])
        n, d = int(attn.num_heads), int(attn.head_dim)
        q = _rotate(attn.norm_q(attn.q(x)).view(b, s, n, d), cos, sin)
        k = _rotate(attn.norm_k(attn.k(x)).view(b, s, n, d), cos, sin)
        out = self.attention(q=q.flatten(2), k=k.flatten(2), v=attn.v(x), num_heads=attn.num_heads)
        return attn.o(out)

    def _rope(self, grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin of FlashHead's 3-D RoPE (its `freqs` are e^{i angle}) for a (f, h, w) grid: (L, 1, head_dim/2)."""
        f, h, w = grid
        freqs = self.model.freqs
        c = freqs.shape[1]
        parts = freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
        rotation = torch.cat([
            parts[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
            parts[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
            parts[2][:w].view(1, 1, w, -1).expand(f, h, w, -1),
        ], dim=-1).reshape(f * h * w, 1, -1)
        return rotation.real.float().contiguous(), rotation.imag.float().contiguous()


def _nvjpeg_encoder(device: torch.device) -> JpegEncoder | None:
    """torchvision's batched nvJPEG `encode_jpeg`, or None where it is missing or fails on `device`."""
    if device.type != "cuda":
        return None
    try:
        from torchvision.io import encode_jpeg

        encode_jpeg([torch.zeros((3, 16, 16), dtype=torch.uint8, device=device)], quality=85)
    except Exception as error:  # noqa: BLE001 - no torchvision, or one built without nvJPEG
        log.warning("JPEG frames are encoded on the host: nvJPEG is not usable (%s)", error)
        return None
    return encode_jpeg


def _planar(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) -> (B, T, 3, H, W), contiguous: the planar images nvJPEG reads."""
    return frames.permute(0, 1, 4, 2, 3).contiguous()


def _stable_compile_cache() -> None:
    """Room for the graphs of batch 1 and the batch-dynamic graph of FlashHead's model and VAE."""
    config = torch._dynamo.config
    config.cache_size_limit = max(config.cache_size_limit, 16)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """FlashHead's `rope_apply` (complex product of channel pairs with e^{i angle}) for a batch, float32."""
    pairs = x.float().unflatten(-1, (-1, 2))
    real, imag = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1)
    return rotated.flatten(-2).to(x.dtype)
