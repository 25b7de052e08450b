#!/usr/bin/env bash
# Round 6, call 3 (after 6a on the same machine; about 9 minutes): Pro at the deployment's settings
# (compiled, `blocks`, max batch 1) the way a host gets there: the playbook's compile_cache step builds the
# cache (cold), then the server starts warm: `accept smoke`, the rtx4090-pro profile, one realtime stream,
# a warm restart. Then the compiled Pro engine against itself eager (B = 1 and 2) on the same cache, and with
# the time left, 16 and 14 realtime Lite streams with the DiT in FP8 (max batch 16).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
timeout 420 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type pro --compile --compile-scope blocks \
  --cache-dir "$U/procache" --fresh-cache --provision-cache --max-batch 1 --max-streams 1 --smoke \
  --profile rtx4090-pro --scenarios realtime:1 --duration 10 --restarts 1 --name gpu-server-pro-compiled-r6 2>&1 | tail -30
grep -h "start-up phase\|model ready" "$OUT"/gpu-server-pro-compiled-r6-server.log | cut -c1-150 | tail -14
timeout 150 python3 benchmarks/gpu_batching.py --repo "$U/flashhead" --model-type pro --mode compiled --batches "" \
  --check-compiled --cache-dir "$U/procache" --name gpu-batching-pro-blocks-check 2>&1 | grep -v "^ *{" | tail -12
left=$((570 - SECONDS))  # what the call has left: realtime Lite streams with the DiT in FP8, max batch 16
if [ "$left" -gt 280 ]; then
  FLASHHEAD_DIT_DTYPE=fp8 timeout "$left" python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type lite \
    --compile --compile-scope blocks --cache-dir "$U/fp8cache" --max-batch 16 --max-streams 16 --duration 12 \
    --scenarios realtime:16,realtime:14 --name gpu-streams-lite-b16-fp8-r6 2>&1 | tail -8
fi
