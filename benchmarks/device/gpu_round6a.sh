#!/usr/bin/env bash
# Round 6, call 1 (BUNDLE=.device/r3 carried; about 8 minutes): Lite at the deployment's settings
# (compiled, `blocks`, max batch 1) with the photo's VAE encode eager and transformers' scikit-learn import
# skipped: a cold start from an empty compile cache, `accept smoke`, the rtx4090-lite profile (its three
# realtime streams), one realtime stream, three warm restarts; then one warm start under cProfile
# (benchmarks/gpu_startup_profile.py) to show where the rest of a restart goes.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
  python3 -c "import numpy, torch, torchvision; print('numpy', numpy.__version__, 'torch', torch.__version__, torchvision.__version__)"
} > "$OUT/env.txt" 2>&1
timeout 420 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b1cache" --fresh-cache --max-batch 1 --max-streams 3 --smoke --profile rtx4090-lite \
  --scenarios realtime:1 --duration 10 --restarts 3 --name gpu-server-lite-smoke-restarts-r6 2>&1 | tail -30
grep -h "start-up phase\|model ready" "$OUT"/gpu-server-lite-smoke-restarts-r6-server.log | cut -c1-150 | tail -28
FLASHHEAD_BACKEND=flashhead FLASHHEAD_WEIGHTS=random FLASHHEAD_REPO_DIR="$PWD/$U/flashhead" \
  FLASHHEAD_MODEL_ROOT=/tmp/flashhead-model-root FLASHHEAD_MODEL_TYPE=lite FLASHHEAD_COMPILE=1 \
  FLASHHEAD_COMPILE_SCOPE=blocks FLASHHEAD_COMPILE_CACHE_DIR="$PWD/$U/b1cache" FLASHHEAD_MAX_BATCH=1 \
  timeout 80 python3 benchmarks/gpu_startup_profile.py --name gpu-startup-profile-lite-r6 > "$OUT/profile.log" 2>&1
head -3 "$OUT/profile.log"; grep -A3 "TorchDynamo compilation metrics" "$OUT/profile.log" | head -12
