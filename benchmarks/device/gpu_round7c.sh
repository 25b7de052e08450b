#!/usr/bin/env bash
# Round 7, call 3 (after 7a/7b on the same machine; about 9 minutes): Pro at the deployment's settings (compiled,
# `blocks`, max batch 1) the way a host gets there: the playbook's compile_cache step builds the cache (cold),
# then the server starts warm: `accept smoke`, the rtx4090-pro profile, one realtime stream, a warm restart.
# Then the scheduler's and the streaming tests on the device's Python 3.12 (the output thread is new).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
timeout 430 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type pro --compile --compile-scope blocks \
  --cache-dir "$U/procache" --fresh-cache --provision-cache --max-batch 1 --max-streams 1 --smoke \
  --profile rtx4090-pro --scenarios realtime:1 --duration 10 --restarts 1 --name gpu-server-pro-compiled-r7 2>&1 | tail -30
grep -h "start-up phase\|model ready" "$OUT"/gpu-server-pro-compiled-r7-server.log | cut -c1-150 | tail -14
stub_suite_programs
PATH="$PATH:$PWD/$U/fake-bin" timeout $((580 - SECONDS)) python3 -m pytest -q -p no:cacheprovider -n 8 \
  tests/inference/test_scheduler.py tests/inference/test_device_jpeg.py tests/inference/test_stream.py \
  -W ignore::DeprecationWarning > "$OUT/py312-scheduler.log" 2>&1; echo "pytest exit $?" >> "$OUT/py312-scheduler.log"
tail -4 "$OUT/py312-scheduler.log"
