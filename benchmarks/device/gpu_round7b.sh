#!/usr/bin/env bash
# Round 7, call 2 (BUNDLE=.device/r3 carried, a fresh machine; about 8 minutes): the server at max batch 16 with
# each batch's nvJPEG encoding on the output thread beside the next batch and the model on a CUDA stream of its
# own: one stream's throughput, realtime 16 and 14 Lite streams (cold compile cache); then FlashHead's own
# compiled loop on the same machine for the single-stream ratio.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; } > "$OUT/env.txt" 2>&1
timeout 300 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b16cache" --fresh-cache --max-batch 16 --max-streams 16 --duration 12 \
  --scenarios throughput:1,realtime:16,realtime:14 --name gpu-streams-lite-b16-r7 2>&1 | tail -12
grep -h "start-up phase\|model ready" "$OUT"/gpu-streams-lite-b16-r7-server.log | cut -c1-150 | tail -4
timeout $((575 - SECONDS)) python3 benchmarks/gpu_flashhead_loop.py --repo "$U/flashhead" --mode compiled \
  --cache-dir "$U/loopcache" --chunks 30 --name gpu-loop-lite-compiled-r7b 2>&1 | tail -1
