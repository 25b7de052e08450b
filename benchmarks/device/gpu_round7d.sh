#!/usr/bin/env bash
# Round 7, call 3 (straight after 7b on the same machine): realtime 16 and 14 Lite streams at max batch 16 with
# the DiT in FP8 (cold compile cache), the output thread as in 7b.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
FLASHHEAD_DIT_DTYPE=fp8 timeout "${LIMIT:-280}" python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite \
  --compile --compile-scope blocks --cache-dir "$U/fp8cache" --fresh-cache --max-batch 16 --max-streams 16 \
  --duration 12 --scenarios realtime:16,realtime:14 --name gpu-streams-lite-b16-fp8-r7 2>&1 | tail -8
