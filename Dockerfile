# syntax=docker/dockerfile:1
# The FlashHead inference server as an image (manifests/overlays/image).
#   docker build -t REGISTRY/flashhead:0.1.0 --build-arg FLASHHEAD_COMMIT=<pinned commit> .
# The checkpoints are NOT in the image: mount them (laid out like {model_root}: models/...) at
# /opt/models/flashhead. The pod's root filesystem is read-only; /tmp and the caches are volumes.
# Not built in this repository's CI (no container engine there); see docs/deploy.md.

ARG CUDA_IMAGE_TAG=12.8.1-cudnn

# ---- build: compilers + CUDA toolkit, builds the venv (flash-attn may need nvcc) ----
FROM nvidia/cuda:${CUDA_IMAGE_TAG}-devel-ubuntu22.04 AS build
ARG FLASHHEAD_REPO=https://github.com/Soul-AILab/SoulX-FlashHead.git
ARG FLASHHEAD_COMMIT
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# A prebuilt flash-attn wheel URL (matching cp310 / torch 2.7 / cu12 / cxx11abi) avoids a long source build.
ARG FLASH_ATTN_WHEEL=
ARG MAX_JOBS=4
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.10 python3.10-venv python3.10-dev git ca-certificates \
      build-essential ninja-build \
 && rm -rf /var/lib/apt/lists/*
RUN test -n "$FLASHHEAD_COMMIT" || { echo "set --build-arg FLASHHEAD_COMMIT=<commit> (the playbook's pin)" >&2; exit 1; }
RUN git clone --filter=blob:none "$FLASHHEAD_REPO" /opt/flashhead/SoulX-FlashHead \
 && git -C /opt/flashhead/SoulX-FlashHead checkout --detach "$FLASHHEAD_COMMIT" \
 && rm -rf /opt/flashhead/SoulX-FlashHead/.git
RUN python3.10 -m venv /opt/flashhead/.venv
ENV PATH=/opt/flashhead/.venv/bin:$PATH
RUN pip install --upgrade pip wheel setuptools \
 && pip install --index-url "$TORCH_INDEX_URL" torch==2.7.1 torchvision==0.22.1 \
 && if [ -n "$FLASH_ATTN_WHEEL" ]; then pip install "$FLASH_ATTN_WHEEL"; \
    else MAX_JOBS="$MAX_JOBS" pip install --no-build-isolation flash-attn==2.8.0.post2; fi \
 && python -c "import flash_attn, torch; print('flash_attn', flash_attn.__version__, 'torch', torch.__version__)"
RUN pip install --extra-index-url "$TORCH_INDEX_URL" -r /opt/flashhead/SoulX-FlashHead/requirements.txt
COPY pyproject.toml README.md /src/
COPY constraints/server.txt /src/constraints/server.txt
COPY ops /src/ops
COPY inference /src/inference
# The server's dependencies at the versions CI tested (constraints/server.txt), never re-resolved.
RUN pip install --extra-index-url "$TORCH_INDEX_URL" -c /src/constraints/server.txt "/src[gpu,server]"
# pip compiled the venv's bytecode; FlashHead's clone gets its own here, since the running image can write
# none (read-only root, PYTHONDONTWRITEBYTECODE) and would otherwise compile its sources at every start.
RUN python -m compileall -q -j 0 /opt/flashhead/SoulX-FlashHead

# ---- runtime: CUDA runtime libraries only, the venv, a non-root user ----
FROM nvidia/cuda:${CUDA_IMAGE_TAG}-runtime-ubuntu22.04
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.10 ffmpeg libgl1 libglib2.0-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 flashhead \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin flashhead
COPY --from=build /opt/flashhead /opt/flashhead
# MALLOC_ARENA_MAX: glibc keeps what each thread's arena freed; two arenas keep the server's memory flat
# (the server also sets it for itself and its media workers with mallopt, docs/protocol.md "Limits").
ENV PATH=/opt/flashhead/.venv/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    FLASHHEAD_HOST=0.0.0.0 \
    FLASHHEAD_PORT=8000 \
    FLASHHEAD_MODEL_ROOT=/opt/models/flashhead \
    FLASHHEAD_REPO_DIR=/opt/flashhead/SoulX-FlashHead
# The checkpoints volume; nothing in the image writes to it.
VOLUME ["/opt/models/flashhead"]
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
CMD ["python", "-m", "inference"]
