#!/usr/bin/env bash
# Round 5, call 1 of 2 (about 7 minutes): FlashHead's import with and without bytecode (the round-4 bundle
# had none, a host has it); Lite at the deployment defaults (compiled, `blocks`, max batch 1) from an empty
# compile cache: cold start, `accept smoke`, the rtx4090-lite profile, one realtime stream, then three warm
# restarts (restart-to-ready with the cache, the CUDA context created while FlashHead imports). The profile's
# three realtime streams need --max-streams 3 (its run here had 1, so only its single-stream part ran).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
  python3 -c "import numpy, torch, torchvision; print('numpy', numpy.__version__, 'torch', torch.__version__, torchvision.__version__)"
} > "$OUT/env.txt" 2>&1
importtime() {  # $1: a label; then environment settings for the import
  local label=$1 root=$PWD; shift
  (cd "$U/flashhead" && env "$@" python3 -X importtime -c "
import sys, time; sys.path.insert(0, '$root/benchmarks'); import torch; import gpu_shims; gpu_shims.install()
started = time.perf_counter(); import flash_head.inference; print('$label: FlashHead import %.2f s' % (time.perf_counter() - started))
" 2> "$OUT/importtime-$label.txt")
}
importtime bytecode
importtime source PYTHONPYCACHEPREFIX="$(mktemp -d)"  # an empty bytecode folder: every module compiles as it loads
sort -t'|' -k2 -n -r "$OUT/importtime-bytecode.txt" | head -12 | cut -c1-120
timeout 420 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b1cache" --fresh-cache --max-batch 1 --max-streams 3 --smoke --profile rtx4090-lite \
  --scenarios realtime:1 --duration 10 --restarts 3 --name gpu-server-lite-smoke-restarts-r5 2>&1 | tail -30
grep -h "start-up phase\|model ready" "$OUT"/gpu-server-lite-smoke-restarts-r5-server.log | cut -c1-150 | tail -28
