#!/usr/bin/env bash
# Round 5, call 3 (after gpu_round5a/b on the same machine; about 9 minutes): the two levers the B = 16
# profile points at (the VAE in channels-last memory, nvJPEG + copy overlapped with the next chunk), timed
# against bf16 at B = 12 and 16 with their frame deviation; then realtime 12, 14 and 16 Lite streams at max
# batch 16 with the DiT in FP8 (the one lever built into the engine), cold compile cache.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
timeout 300 python3 benchmarks/gpu_levers.py --repo "$U/flashhead" --batches 12,16 --chunks 4 --deviation-chunks 2 \
  --cache-dir "$U/leverscache" --name gpu-levers-lite-r5 2>&1 | grep -v "^ \|^-\|^Name\|profile" | tail -24
FLASHHEAD_DIT_DTYPE=fp8 timeout 290 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile \
  --compile-scope blocks --cache-dir "$U/fp8cache" --fresh-cache --max-batch 16 --max-streams 16 --duration 12 \
  --scenarios realtime:12,realtime:14,realtime:16 --name gpu-streams-lite-b16-fp8 2>&1 | tail -8
