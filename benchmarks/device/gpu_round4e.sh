#!/usr/bin/env bash
# Round 4, second machine, call 1 of 2 (about 8 minutes): Lite on the server at max batch 16 (blocks scope),
# cold compile cache: one stream in throughput mode, realtime 10, 12, 14 and 16 streams, a warm restart;
# then restart-to-ready at the deployment defaults (max batch 1) from that cache, three starts.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; } > "$OUT/env.txt" 2>&1
timeout 380 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b16cache" --fresh-cache --max-batch 16 --max-streams 16 --duration 15 --restarts 1 \
  --scenarios throughput:1,realtime:10,realtime:12,realtime:14,realtime:16 --name gpu-streams-lite-b16 2>&1 | tail -45
timeout 150 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite --compile --compile-scope blocks \
  --cache-dir "$U/b16cache" --max-batch 1 --max-streams 1 --restarts 2 --scenarios throughput:1 --duration 5 \
  --name gpu-restarts-lite-blocks-b1 2>&1 | tail -12
