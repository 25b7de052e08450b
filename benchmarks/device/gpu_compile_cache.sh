#!/usr/bin/env bash
# One device call (about 7 minutes): the compile cache built as the playbook's compile_cache step does
# (cold), the step again (skipped), then the compiled Lite server started warm three times and its
# rtx4090-lite profile. Bundle layout as in gpu_pro_py312.sh; results and logs to $OUT.
set -uo pipefail
BUNDLE=$(cd "$(dirname "$0")/../../.." && pwd)
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$BUNDLE"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
cd "$BUNDLE/repo"
timeout 500 python3 benchmarks/gpu_server.py --repo "$BUNDLE/flashhead" --model-type lite --compile --cache-dir /tmp/cc \
  --fresh-cache --provision-cache --restarts 2 --profile rtx4090-lite --scenarios "" --max-batch 1 --max-streams 4 \
  --name gpu-compile-cache-lite 2>&1 | tail -40
grep -h "start-up phase\|model ready" "$OUT"/gpu-compile-cache-lite-server.log | cut -c1-200 | tail -30
