#!/usr/bin/env bash
# Round 4, first machine, one call (about 7 minutes): FlashHead's own compiled streaming loop for Lite (the
# baseline of the single-stream ratio, same machine as the server runs of the next call), then the speed
# levers in one process (benchmarks/gpu_levers.py: phases per batch, cuDNN autotuning, FP8 DiT with its
# deviation from bf16, SDPA kernels, profiler tables).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
{ python3 --version; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; nproc; } > "$OUT/env.txt" 2>&1
timeout 200 python3 benchmarks/gpu_flashhead_loop.py --repo "$U/flashhead" --mode compiled --cache-dir "$U/loopcache" \
  --chunks 30 --name gpu-loop-lite-compiled-r4b 2>&1 | tail -3
cp benchmarks/results/gpu-loop-lite-compiled-r4b.json "$U/" 2>/dev/null
timeout 370 python3 benchmarks/gpu_levers.py --repo "$U/flashhead" --batches 1,12,16 --chunks 5 \
  --cache-dir "$U/leverscache" --name gpu-levers-lite 2>&1 | grep -v "^USDT" | tail -45
