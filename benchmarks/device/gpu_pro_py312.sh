#!/usr/bin/env bash
# One device call (about 6 minutes): FlashHead Pro on the default (fast, eager) engine, Lite's profile,
# and the server + media test suites on the device's Python 3.12. Run from a bundle laid out as
#   BUNDLE/repo (this repository), BUNDLE/flashhead (FlashHead at the pinned commit), BUNDLE/whl (cp312
#   wheels: the [server] extra at constraints/server.txt's versions, FlashHead's missing requirements).
# Writes JSON results and logs to $OUT.
set -uo pipefail
BUNDLE=$(cd "$(dirname "$0")/../../.." && pwd)
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$BUNDLE"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
cd "$BUNDLE/repo"
FH="$BUNDLE/flashhead"
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -m pip list 2>/dev/null | grep -i -E '^(torch|triton|numpy|pillow|av|starlette|uvicorn|transformers|diffusers|pytest|hypothesis|websockets) '; } > "$OUT/env.txt" 2>&1
# 1. The server and media suites on Python 3.12 (beside the Pro equality check: CPU cores vs GPU).
(timeout 150 python3 -m pytest -q -p no:cacheprovider -n 6 tests/inference -W ignore::DeprecationWarning \
   > "$OUT/py312-tests.log" 2>&1; echo "pytest exit $?" >> "$OUT/py312-tests.log") &
tests=$!
# 2. Pro: the fast engine (eager) against FlashHead's run_pipeline, batched vs alone, then B = 1, 2 timing.
timeout 150 python3 benchmarks/gpu_batching.py --repo "$FH" --model-type pro --mode eager --check --batches 1,2 \
  --chunks 3 --name gpu-batching-pro-eager-check 2>&1 | tail -40
wait $tests; tail -15 "$OUT/py312-tests.log"
# 3. Pro through the server on the default engine: accept smoke, the rtx4090-pro profile, realtime streams.
timeout 170 python3 benchmarks/gpu_server.py --repo "$FH" --model-type pro --max-batch 2 --max-streams 2 --smoke \
  --profile rtx4090-pro --scenarios realtime:1,realtime:2 --duration 10 --name gpu-server-pro-fast 2>&1 | tail -30
# 4. Lite through the server on the default engine (eager): its profile.
timeout 110 python3 benchmarks/gpu_server.py --repo "$FH" --model-type lite --max-batch 4 --max-streams 4 \
  --profile rtx4090-lite --scenarios "" --name gpu-server-lite-fast-eager 2>&1 | tail -20
