#!/usr/bin/env bash
# Round 5, second machine, call 1 of 2 (about 5 minutes): FlashHead's import with the server's torch-only
# settings (USE_TF=0, USE_FLAX=0), then Lite at the deployment defaults (compiled, `blocks`, max batch 1):
# a cold start from an empty compile cache and four warm restarts, alone on the machine.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
root=$PWD; (cd "$U/flashhead" && USE_TF=0 USE_FLAX=0 python3 -X importtime -c "
import sys, time; sys.path.insert(0, '$root/benchmarks'); import torch; import gpu_shims; gpu_shims.install()
started = time.perf_counter(); import flash_head.inference; print('torch-only: FlashHead import %.2f s' % (time.perf_counter() - started))
" 2> "$OUT/importtime-torch-only.txt")
grep -c "jax" "$OUT/importtime-torch-only.txt"
timeout 330 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b1cache" --fresh-cache --max-batch 1 --max-streams 1 --scenarios throughput:1 --duration 5 \
  --restarts 4 --name gpu-restarts-lite-blocks-b1-r5 2>&1 | grep "restart\|restart_to_ready"
grep -h "start-up phase\|model ready" "$OUT"/gpu-restarts-lite-blocks-b1-r5-server.log | cut -c1-150 | tail -30
