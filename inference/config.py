"""Server settings from FLASHHEAD_* environment variables, validated once at start-up.

Every field of `ServerConfig` maps to `FLASHHEAD_<FIELD NAME IN CAPITALS>`; `flashhead serve`
flags override the environment. Invalid values stop the server with a message naming the
variable and what it accepts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference import layout
from inference.backends import BACKEND_NAMES, MODEL_TYPES
from inference.backends.flashhead.engines import (
    COMPILE_SCOPES,
    DEFAULT_COMPILE_SCOPE,
    DEFAULT_DIT_DTYPE,
    DIT_DTYPES,
    ENGINE_CHOICES,
)
from inference.errors import ConfigError

PREFIX = "FLASHHEAD_"
MAX_AUDIO_CHANNELS = 64  # libavfilter's pan filter mixes at most this many (inference/media/audio.py)
SECRET_FIELDS = frozenset({"api_token"})
MAX_TOKEN_FILE_BYTES = 4096


@dataclass(frozen=True)
class ServerConfig:
    """All settings of the server. Defaults suit a local CPU run of the reference backend."""

    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "reference"  # inference.backends.BACKEND_NAMES
    model_type: str = "lite"  # inference.backends.MODEL_TYPES
    # The paths below default to inference/layout.py's places under model_root (None: derived).
    model_root: Path = Path(layout.DEFAULT_ROOT)
    repo_dir: Path | None = None
    checkpoint_dir: Path | None = None
    device: str = "cuda"
    compile: bool = False
    compile_cache_dir: Path | None = None  # flashhead: the one directory the server writes
    weights: str = "checkpoints"  # flashhead: checkpoints | random (capacity probe: frames are noise)
    engine: str = "auto"  # flashhead: inference.backends.flashhead.engines.ENGINE_CHOICES
    cuda_graphs: bool = True  # flashhead fast engine with compile: the DiT replays as CUDA graphs
    jpeg_on_device: bool = True  # flashhead fast engine: JPEG frames encoded on the GPU (nvJPEG)
    jpeg_threads: int = 0  # threads that encode JPEG frames on the host; 0: one per CPU, at most 16
    # flashhead: warm-up runs (and, with CUDA graphs, records) every batch size up to max_batch; off =
    # batch 1 and 2 only, the other sizes record their graph on first use (~1 s each): a faster start.
    warm_all_batches: bool = True
    # flashhead compiled fast engine: `blocks` compiles one DiT block and reuses it for all 30 (a far shorter
    # compile and restart, as fast at every batch size measured: docs/gpu.md); `model` compiles the whole DiT step.
    compile_scope: str = DEFAULT_COMPILE_SCOPE
    # flashhead: the DiT blocks' linear layers in FlashHead's bf16, or as FP8 products (opt-in; Ada/Hopper GPUs;
    # frames deviate by FP8 rounding: docs/gpu.md has the measured deviation).
    dit_dtype: str = DEFAULT_DIT_DTYPE
    api_token: str | None = field(default=None, repr=False)
    api_token_file: Path | None = None  # the token read from this file (a mounted Secret), stripped
    allow_insecure: bool = False  # serve a non-loopback address without a token
    max_streams: int = 3
    # realtime: admit a stream only while measured chunk times keep every stream at 1x (and within
    # max_streams); fixed: admit up to max_streams whatever the speed (benchmarks, offline work).
    admission: str = "realtime"
    max_batch: int = 1
    batch_wait_ms: float = 5.0
    # Per stream, audio chunks (0.96 s, 61 KB each) waiting for the model before the server stops
    # reading the socket. Deep enough that TTS audio sent ahead never hides an `interrupt` behind it;
    # frames, the costly part, are bounded separately (one generated chunk per stream).
    max_queued_chunks: int = 64
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_image_aspect: float = 8.0  # longer side / shorter side of a photo
    max_audio_bytes: int = 64 * 1024 * 1024
    max_audio_seconds: float = 600.0
    max_audio_channels: int = MAX_AUDIO_CHANNELS
    max_message_bytes: int = 1024 * 1024  # one WebSocket message
    # Untrusted media is decoded in this many worker processes, each limited in memory and time.
    media_workers: int = 2
    media_memory_mb: int = 1024
    media_timeout_s: float = 60.0
    max_uploads: int = 4  # request bodies and inline images being read or decoded at once
    body_timeout_s: float = 30.0  # longest wait for the next piece of a request body
    body_deadline_s: float = 120.0  # longest time to receive a whole request body
    header_timeout_s: float = 10.0  # a connection must send a complete request head within this
    keep_alive_s: int = 5  # an idle keep-alive connection is closed after this
    max_connections: int = 512  # open TCP connections; beyond, new ones get 503 and are closed
    avatar_cache: int = 32
    idle_frames: bool = False  # keep sending frames of silence when no audio arrives
    live_view: bool = False  # serve the browser live view at /live
    reference_chunk_ms: float = 0.0  # reference backend: emulated compute time per chunk
    seed: int = 0
    jpeg_quality: int = 85
    grace_seconds: float = 10.0  # SIGTERM: how long streams may finish
    # The name this server gives itself in `ready`, /readyz and /v1/info; empty: its hostname (in
    # Kubernetes, the pod's name), so a fleet's acceptance run can tell which pod served a stream.
    instance: str = ""
    ready_timeout_s: float = 30.0  # WebSocket: time allowed for the `start` message
    log_level: str = "info"
    log_format: str = "json"  # json | text

    @property
    def layout(self) -> layout.Layout:
        """The model_root layout (inference/layout.py) the path defaults come from."""
        return layout.Layout.of(self.model_root)

    @property
    def resolved_repo_dir(self) -> Path:
        return self.repo_dir or Path(self.layout.repo)

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or Path(self.layout.models)

    @property
    def resolved_compile_cache_dir(self) -> Path:
        """Where compiled kernels persist (its inductor/ and triton/ subdirectories: inference/layout.py)."""
        return self.compile_cache_dir or Path(self.layout.compile_cache)

    def public(self) -> dict[str, Any]:
        """The settings without secrets (for logs and /v1/info)."""
        return {f.name: ("***" if f.name in SECRET_FIELDS and getattr(self, f.name) else
                         _plain(getattr(self, f.name))) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with `changes` applied (values already typed), validated."""
        updated = dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
        validate(updated)
        return updated


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
    """Read FLASHHEAD_* from `environ` (default os.environ), apply typed `overrides`, validate."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for item in dataclasses.fields(ServerConfig):
        raw = environ.get(PREFIX + item.name.upper())
        if raw is not None and raw != "":
            values[item.name] = _parse(item.name, str(item.type), raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("api_token_file") is not None:
        if values.get("api_token"):
            raise ConfigError(f"both {PREFIX}API_TOKEN and {PREFIX}API_TOKEN_FILE are set",
                              "set one of them: the file (a mounted Secret) keeps the token out of the environment")
        values["api_token"] = read_token_file(values["api_token_file"])
    config = ServerConfig(**values)
    validate(config)
    return config


def validate(config: ServerConfig) -> None:
    """Raise ConfigError naming the variable when a value is out of range or inconsistent."""
    _choice(config, "backend", BACKEND_NAMES)
    _choice(config, "model_type", MODEL_TYPES)
    _choice(config, "weights", ("checkpoints", "random"))
    _choice(config, "engine", ENGINE_CHOICES)
    _choice(config, "compile_scope", COMPILE_SCOPES)
    _choice(config, "dit_dtype", DIT_DTYPES)
    _choice(config, "admission", ("realtime", "fixed"))
    _choice(config, "log_format", ("json", "text"))
    _choice(config, "log_level", ("debug", "info", "warning", "error"))
    for name in ("max_streams", "max_batch", "max_queued_chunks", "max_image_bytes", "max_image_pixels",
                 "max_audio_bytes", "max_audio_channels", "max_message_bytes", "avatar_cache", "media_workers",
                 "media_memory_mb", "max_uploads", "keep_alive_s", "max_connections"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{PREFIX}{name.upper()} must be at least 1", "set a positive number")
    for name in ("batch_wait_ms", "reference_chunk_ms", "grace_seconds", "max_audio_seconds",
                 "ready_timeout_s", "jpeg_threads"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{PREFIX}{name.upper()} must not be negative", "set 0 or more")
    for name in ("media_timeout_s", "body_timeout_s", "body_deadline_s", "header_timeout_s"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{PREFIX}{name.upper()} must be more than 0 seconds", "set a positive number")
    if config.max_audio_channels > MAX_AUDIO_CHANNELS:
        raise ConfigError(f"{PREFIX}MAX_AUDIO_CHANNELS={config.max_audio_channels} is more than the "
                          f"{MAX_AUDIO_CHANNELS} channels the decoder mixes", f"set 1-{MAX_AUDIO_CHANNELS}")
    if config.max_image_aspect < 1:
        raise ConfigError(f"{PREFIX}MAX_IMAGE_ASPECT must be at least 1 (longer side / shorter side)",
                          "8 is the default")
    if not 0 < config.port < 65536:
        raise ConfigError(f"{PREFIX}PORT {config.port} is not a TCP port", "use 1-65535")
    if not 1 <= config.jpeg_quality <= 100:
        raise ConfigError(f"{PREFIX}JPEG_QUALITY must be 1-100", "85 is a good default")
    if config.api_token is not None and not (config.api_token.isascii() and config.api_token.isprintable()
                                             and " " not in config.api_token):
        raise ConfigError(f"{PREFIX}API_TOKEN must be printable ASCII without spaces",
                          "HTTP headers carry nothing else: python -c 'import secrets; print(secrets.token_urlsafe())'")
    if config.api_token is not None and len(config.api_token) < 16:
        raise ConfigError(f"{PREFIX}API_TOKEN is shorter than 16 characters",
                          "use a random token: python -c 'import secrets; print(secrets.token_urlsafe())'")
    if not config.api_token and not config.allow_insecure and not is_loopback(config.host):
        raise ConfigError(
            f"refusing to serve {config.host} without an API token",
            f"set {PREFIX}API_TOKEN (clients send `Authorization: Bearer <token>`), bind 127.0.0.1, "
            f"or set {PREFIX}ALLOW_INSECURE=1 if something in front of the server authenticates")


def read_token_file(path: Path) -> str:
    """The API token in `path` (a mounted Secret's key), surrounding whitespace stripped."""
    variable = f"{PREFIX}API_TOKEN_FILE"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{variable}={path}: cannot read it ({error.strerror or error})",
                          "mount the token Secret at that path (docs/deploy.md), or fix the path") from None
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise ConfigError(f"{variable}={path} is larger than {MAX_TOKEN_FILE_BYTES} bytes: not a token",
                          "point it at the file holding only the token (the Secret's `token` key)")
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}={path} is not UTF-8 text", "write the token as text") from None
    if not token:
        raise ConfigError(f"{variable}={path} is empty", "write the token into the Secret's `token` key")
    return token


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (where no token is required)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _choice(config: ServerConfig, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(config, name) not in allowed:
        raise ConfigError(f"{PREFIX}{name.upper()}={getattr(config, name)!r} is not valid",
                          f"use one of: {', '.join(allowed)}")


def _parse(name: str, kind: str, raw: str) -> Any:
    variable = PREFIX + name.upper()
    try:
        if "bool" in kind:
            return _parse_bool(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if "Path" in kind:
            return Path(raw).expanduser()
    except ValueError:
        raise ConfigError(f"{variable}={raw!r} is not a valid {kind.split(' ')[0]}",
                          f"fix or unset {variable}") from None
    return raw.strip()


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value
