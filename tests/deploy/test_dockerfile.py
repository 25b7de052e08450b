"""The Dockerfile agrees with the image overlay (no container engine here to build it: see docs/deploy.md)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from ops.deploy.params import find, pod_spec, settings
from ops.deploy.render import render
from tests.deploy import controller as ctl

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def env_value(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", DOCKERFILE)
    assert match, f"{name} is not set in the Dockerfile"
    return match.group(1).rstrip("\\").strip()


def included(path: str) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins, `!` re-includes."""
    keep = True
    for pattern in (REPO / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated, pattern = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        if any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            keep = negated
    return keep


def test_cuda_12_8_runtime_base_and_a_non_root_user_matching_the_overlay() -> None:
    stages = instructions("FROM")
    assert "${CUDA_IMAGE_TAG}-runtime-ubuntu22.04" in stages[-1]
    assert "ARG CUDA_IMAGE_TAG=12.8" in DOCKERFILE
    [user] = instructions("USER")
    uid, gid = (int(x) for x in user.split(":"))
    overlay = render("image", {"image": ctl.pinned("flashhead:0.1.0")}).objects
    context = pod_spec(overlay)["securityContext"]
    assert uid != 0 and (context["runAsUser"], context["runAsGroup"]) == (uid, gid)


def test_image_settings_agree_with_the_overlay() -> None:
    overlay = render("image", {"image": ctl.pinned("flashhead:0.1.0")}).objects
    data = settings(overlay)
    assert env_value("FLASHHEAD_REPO_DIR") == data["FLASHHEAD_REPO_DIR"]
    assert env_value("FLASHHEAD_MODEL_ROOT") == data["FLASHHEAD_MODEL_ROOT"]
    assert instructions("EXPOSE") == [data["FLASHHEAD_PORT"]]
    assert env_value("FLASHHEAD_HOST") == data["FLASHHEAD_HOST"]
    container = find(overlay, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "inference"]  # the venv is first on the image's PATH
    assert env_value("PATH").startswith("/opt/flashhead/.venv/bin:")
    assert '"/src[gpu,server]"' in DOCKERFILE


def test_everything_copied_is_in_the_build_context_and_nothing_else_is() -> None:
    sources = [part for line in instructions("COPY") if not line.startswith("--from")
               for part in line.split()[:-1]]
    assert sources == ["pyproject.toml", "README.md", "constraints/server.txt", "ops", "inference"]
    for source in sources:
        assert (REPO / source).exists() and included(source), source
    assert included("inference/config.py") and included("ops/deploy/apply.py") and not included("constraints/dev.txt")
    for private in (".venv/bin/python", "tests/deploy/kube.py", "vendor/SoulX-FlashHead/README.md", ".git/HEAD",
                    "ops/__pycache__/x.pyc"):
        assert not included(private), private
