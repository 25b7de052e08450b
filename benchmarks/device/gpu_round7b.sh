#!/usr/bin/env bash
# Round 7, call 2 (after 7a on the same machine, ffprobe.xz carried; about 9 minutes): the server at max batch 16
# with each chunk's nvJPEG encoding beside the next chunk (the output thread) and the model on a CUDA stream of
# its own: one stream's throughput (its ratio to 7a's FlashHead loop, same machine), realtime 16 and 14 Lite
# streams; then the same realtime scenarios with the DiT in FP8. Both from a cold compile cache.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
timeout 300 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b16cache" --fresh-cache --max-batch 16 --max-streams 16 --duration 12 \
  --scenarios throughput:1,realtime:16,realtime:14 --baseline gpu-loop-lite-compiled-r7 \
  --name gpu-streams-lite-b16-r7 2>&1 | tail -10
grep -h "start-up phase\|model ready" "$OUT"/gpu-streams-lite-b16-r7-server.log | cut -c1-150 | tail -6
left=$((575 - SECONDS))
if [ "$left" -gt 200 ]; then
  FLASHHEAD_DIT_DTYPE=fp8 timeout "$left" python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite \
    --compile --compile-scope blocks --cache-dir "$U/fp8cache" --fresh-cache --max-batch 16 --max-streams 16 \
    --duration 12 --scenarios realtime:16,realtime:14 --name gpu-streams-lite-b16-fp8-r7 2>&1 | tail -8
fi
