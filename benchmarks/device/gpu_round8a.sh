#!/usr/bin/env bash
# Round 8, call 1 (BUNDLE=.device/r3 carried; about 8 minutes), issue 20: one machine, max batch 16, the output
# thread on; realtime 16 and 14 Lite streams with the JPEG files made by nvJPEG (the default, cold compile
# cache), then the same with FLASHHEAD_JPEG_ON_DEVICE=0: the GPU only computes, the frames cross to the host on
# the output thread and Pillow encodes them in threads (the sixth run found nvJPEG at 377 ms of GPU time
# a B = 16 chunk, taken from the compute it runs beside). Same compile cache, so the second start is warm.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; } > "$OUT/env.txt" 2>&1
for jpeg in 1 0; do
  FLASHHEAD_JPEG_ON_DEVICE=$jpeg timeout $((560 - SECONDS)) python3 benchmarks/gpu_server.py --repo "$U/flashhead" \
    --model-type lite --compile --compile-scope blocks --cache-dir "$U/b16cache" $([ "$jpeg" = 1 ] && echo --fresh-cache) \
    --max-batch 16 --max-streams 16 --duration 12 --scenarios realtime:16,realtime:14 \
    --name "gpu-streams-lite-b16-jpeg-device$jpeg-r8" 2>&1 | grep -A3 '"realtime' | grep -v report | head -12
done
