#!/usr/bin/env bash
# Round 4, second machine, call 2 of 2 (ffprobe.xz carried; about 5 minutes): the server and media suites on the
# device's Python 3.12 with the real ffmpeg and ffprobe, alone; then FlashHead's own compiled loop for Lite on
# this machine (the single-stream ratio against the previous call's throughput:1).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
stub_suite_programs
PATH="$PATH:$PWD/$U/fake-bin" timeout 400 python3 -m pytest -v -p no:cacheprovider -n 8 tests/inference \
  -W ignore::DeprecationWarning > "$OUT/py312-tests.log" 2>&1; echo "pytest exit $?" >> "$OUT/py312-tests.log"
tail -15 "$OUT/py312-tests.log"
timeout 220 python3 benchmarks/gpu_flashhead_loop.py --repo "$U/flashhead" --mode compiled --cache-dir "$U/loopcache" \
  --chunks 30 --name gpu-loop-lite-compiled-r4f 2>&1 | tail -2
