#!/usr/bin/env bash
# One device call (about 8 minutes): the server and media suites on the device's Python 3.12 (av 19, with a
# static ffmpeg), FlashHead Pro through the default engine (accept smoke, its profile, one realtime stream),
# and Lite's start-up with the provisioned compile cache (blocks scope) cold, then restarted twice.
# Run from the repository root with BUNDLE (default .device/r3) holding site.tar.xz (the cp312 packages
# the image lacks or has at other versions: constraints/server.txt's, transformers 4.57.3, tokenizers
# 0.22.1, huggingface_hub 0.36.2, diffusers 0.35.2, loguru, pyloudnorm, pytest-asyncio), ffmpeg.xz (a
# static ffmpeg) and flashhead/ (FlashHead's flash_head/ and requirements.txt at the pinned commit).
set -uo pipefail
BUNDLE=${BUNDLE:-.device/r3}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 NCCL_NVLS_ENABLE=0
mkdir -p /tmp/site /tmp/bin
xz -dc "$BUNDLE/site.tar.xz" | tar -x -C /tmp/site || exit 1
xz -dc "$BUNDLE/ffmpeg.xz" > /tmp/bin/ffmpeg && chmod 755 /tmp/bin/ffmpeg
# The suite's start-up check looks for every program the whole suite uses by name; the server and media
# suites use none of these, and the image has none of them (ffprobe included: its tests fail, said below).
for program in sshd ssh-keygen sudo ip git ffprobe kubectl nsenter unshare mount ps useradd; do
  command -v "$program" >/dev/null || ln -sf /bin/false "/tmp/bin/$program"
done
export PYTHONPATH=/tmp/site PATH="/tmp/bin:$PATH"
{ python3 --version; id -un; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; /tmp/bin/ffmpeg -version | head -1
  python3 -m pip list 2>/dev/null | grep -i -E '^(torch|triton|numpy|pillow|av|starlette|uvicorn|transformers|diffusers|pytest|hypothesis|websockets|soxr) '; } > "$OUT/env.txt" 2>&1
FH="$BUNDLE/flashhead"
# 1. The server and media suites on Python 3.12, beside the GPU work (CPU cores vs GPU).
(timeout 300 python3 -m pytest -q -p no:cacheprovider -n 6 tests/inference -W ignore::DeprecationWarning \
   > "$OUT/py312-tests.log" 2>&1; echo "pytest exit $?" >> "$OUT/py312-tests.log") &
tests=$!
# 2. Pro through the server on the default engine: accept smoke, the rtx4090-pro profile, one realtime stream.
timeout 150 python3 benchmarks/gpu_server.py --repo "$FH" --model-type pro --max-batch 1 --max-streams 1 --smoke \
  --profile rtx4090-pro --scenarios realtime:1 --duration 10 --name gpu-server-pro-fast-smoke 2>&1 | tail -30
# 3. Lite compiled, blocks scope: the playbook's compile_cache step cold, then the server started warm three times.
timeout 270 python3 benchmarks/gpu_server.py --repo "$FH" --model-type lite --compile --compile-scope blocks \
  --cache-dir /tmp/cb --fresh-cache --provision-cache --restarts 2 --scenarios throughput:1 --duration 5 --warmup 1 \
  --max-batch 1 --max-streams 1 --name gpu-compile-cache-lite-blocks-restarts 2>&1 | tail -25
grep -h "start-up phase\|model ready" "$OUT"/gpu-compile-cache-lite-blocks-restarts-server.log 2>/dev/null | cut -c1-160 | tail -24
wait $tests; tail -25 "$OUT/py312-tests.log"
