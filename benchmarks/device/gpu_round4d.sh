#!/usr/bin/env bash
# Round 4, call 3 of 3: restart-to-ready at the deployment defaults (max batch 1, blocks scope) with the
# cache the previous call provisioned, three starts alone; then the server with FLASHHEAD_DIT_DTYPE=fp8 at
# max batch 16: one stream and realtime 14 and 16 streams.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
timeout 150 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b16cache" --max-batch 1 --max-streams 1 --restarts 2 --scenarios throughput:1 --duration 5 \
  --baseline gpu-loop-lite-compiled-r4b --name gpu-restarts-lite-blocks-b1 2>&1 | tail -14
FLASHHEAD_DIT_DTYPE=fp8 timeout 400 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile \
  --compile-scope blocks --cache-dir "$U/fp8cache" --max-batch 16 --max-streams 16 --duration 15 \
  --baseline gpu-loop-lite-compiled-r4b --scenarios throughput:1,realtime:14,realtime:16 --name gpu-streams-lite-b16-fp8 2>&1 | tail -40
