#!/usr/bin/env bash
# One short device call (under 3 minutes): the compile cache built with FLASHHEAD_COMPILE_SCOPE=blocks
# (one DiT block compiled, reused by all 30) cold, then a warm start, one throughput stream, a restart.
set -uo pipefail
BUNDLE=$(cd "$(dirname "$0")/../../.." && pwd)
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$BUNDLE"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
cd "$BUNDLE/repo"
timeout 150 python3 benchmarks/gpu_server.py --repo "$BUNDLE/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir /tmp/cb --fresh-cache --provision-cache --restarts 1 --scenarios throughput:1 --duration 6 --warmup 1 \
  --max-batch 1 --max-streams 1 --name gpu-compile-cache-lite-blocks 2>&1 | tail -25
