"""Settings from FLASHHEAD_* are typed and validated; bad values name the variable and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.config import ServerConfig, from_env, is_loopback
from inference.errors import ConfigError

TOKEN = "x" * 24


def test_defaults_are_a_local_reference_server() -> None:
    config = from_env({})
    assert (config.host, config.port, config.backend, config.model_type) == ("127.0.0.1", 8000, "reference", "lite")
    assert config.resolved_repo_dir == Path("/opt/models/flashhead/SoulX-FlashHead")
    assert config.resolved_checkpoint_dir == Path("/opt/models/flashhead/models")


def test_values_are_typed() -> None:
    config = from_env({"FLASHHEAD_PORT": "9001", "FLASHHEAD_IDLE_FRAMES": "yes", "FLASHHEAD_BATCH_WAIT_MS": "2.5",
                       "FLASHHEAD_MODEL_ROOT": "/data/fh", "FLASHHEAD_REPO_DIR": "/src/fh",
                       "FLASHHEAD_MODEL_TYPE": "pro", "FLASHHEAD_UNRELATED": "ignored",
                       "FLASHHEAD_INVENTORY": "other tools' variable"})
    assert config.port == 9001 and config.idle_frames is True and config.batch_wait_ms == 2.5
    assert config.resolved_repo_dir == Path("/src/fh")
    assert config.resolved_checkpoint_dir == Path("/data/fh/models")
    assert config.model_type == "pro"
    assert (config.cuda_graphs, config.jpeg_on_device) == (True, True)
    off = from_env({"FLASHHEAD_CUDA_GRAPHS": "0", "FLASHHEAD_JPEG_ON_DEVICE": "no"})
    assert (off.cuda_graphs, off.jpeg_on_device) == (False, False)


def test_overrides_win_over_the_environment() -> None:
    config = from_env({"FLASHHEAD_MAX_STREAMS": "2"}, max_streams=7, port=None)
    assert config.max_streams == 7 and config.port == 8000


@pytest.mark.parametrize(("env", "message"), [
    ({"FLASHHEAD_PORT": "http"}, "FLASHHEAD_PORT='http' is not a valid int"),
    ({"FLASHHEAD_PORT": "70000"}, "is not a TCP port"),
    ({"FLASHHEAD_IDLE_FRAMES": "maybe"}, "FLASHHEAD_IDLE_FRAMES='maybe' is not a valid bool"),
    ({"FLASHHEAD_BACKEND": "torch"}, "FLASHHEAD_BACKEND='torch' is not valid"),
    ({"FLASHHEAD_MODEL_TYPE": "max"}, "FLASHHEAD_MODEL_TYPE='max' is not valid"),
    ({"FLASHHEAD_MAX_STREAMS": "0"}, "FLASHHEAD_MAX_STREAMS must be at least 1"),
    ({"FLASHHEAD_GRACE_SECONDS": "-1"}, "FLASHHEAD_GRACE_SECONDS must not be negative"),
    ({"FLASHHEAD_JPEG_QUALITY": "0"}, "FLASHHEAD_JPEG_QUALITY must be 1-100"),
    ({"FLASHHEAD_JPEG_THREADS": "-2"}, "FLASHHEAD_JPEG_THREADS must not be negative"),
    ({"FLASHHEAD_JPEG_THREADS": "four"}, "FLASHHEAD_JPEG_THREADS='four' is not a valid int"),
    ({"FLASHHEAD_API_TOKEN": "short"}, "shorter than 16 characters"),
    ({"FLASHHEAD_HOST": "0.0.0.0"}, "refusing to serve 0.0.0.0 without an API token"),
    ({"FLASHHEAD_HOST": "gpu-1.internal"}, "without an API token"),
])
def test_invalid_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        from_env(env)
    assert message in refused.value.message
    assert refused.value.remedy


def test_public_address_needs_a_token_or_an_explicit_opt_out() -> None:
    assert from_env({"FLASHHEAD_HOST": "0.0.0.0", "FLASHHEAD_API_TOKEN": TOKEN}).api_token == TOKEN
    assert from_env({"FLASHHEAD_HOST": "0.0.0.0", "FLASHHEAD_ALLOW_INSECURE": "1"}).api_token is None
    for host in ("127.0.0.1", "127.8.9.1", "::1", "localhost"):
        assert is_loopback(host) and from_env({"FLASHHEAD_HOST": host}).host == host
    assert not is_loopback("0.0.0.0") and not is_loopback("::")


def test_the_token_never_appears_in_public_settings_or_repr() -> None:
    config = from_env({"FLASHHEAD_API_TOKEN": TOKEN})
    assert config.public()["api_token"] == "***" and TOKEN not in repr(config)
    assert ServerConfig().public()["api_token"] is None
