#!/usr/bin/env bash
# Round 7, call 1 (BUNDLE=.device/r3 carried; about 9 minutes): the two untried levers of the B = 16 profile,
# the VAE in channels-last memory and each chunk's nvJPEG + copy beside the next chunk (gpu_levers.py, B = 12
# and 16, frame deviation against bf16), then FlashHead's own compiled loop on this machine for the
# single-stream ratio (the server's one stream comes in the next call, on the same machine).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; } > "$OUT/env.txt" 2>&1
timeout 300 python3 benchmarks/gpu_levers.py --repo "$U/flashhead" --batches 12,16 --chunks 4 --deviation-chunks 2 \
  --cache-dir "$U/leverscache" --name gpu-levers-lite-r7 2>&1 | grep -v "^ \|^-\|^Name\|profile" | tail -24
left=$((585 - SECONDS))
timeout "$left" python3 benchmarks/gpu_flashhead_loop.py --repo "$U/flashhead" --mode compiled \
  --cache-dir "$U/loopcache" --chunks 30 --name gpu-loop-lite-compiled-r7 2>&1 | tail -3
