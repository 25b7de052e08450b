#!/usr/bin/env bash
# Round 4, call 2 of 3 (about 8 minutes, ffprobe.xz carried): the server and media suites on the device's
# Python 3.12 with the real ffmpeg and ffprobe, beside the playbook's compile_cache step for Lite at
# max batch 16 (blocks scope); then, alone, the server from that cache: one stream in throughput mode (against
# the loop of the previous call), realtime 10, 12, 14 and 16 streams, and a restart with lazy CUDA graphs.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
# The suite's start-up check looks for every program the whole suite uses by name; the server and media
# suites use none of these and the image has none of them.
mkdir -p "$U/fake-bin"
for program in sshd ssh-keygen sudo ip git kubectl nsenter unshare mount ps useradd; do
  command -v "$program" >/dev/null || ln -sf /bin/false "$U/fake-bin/$program"
done
(PATH="$PATH:$PWD/$U/fake-bin" timeout 280 python3 -m pytest -q -p no:cacheprovider -n 8 tests/inference \
   -W ignore::DeprecationWarning > "$OUT/py312-tests.log" 2>&1; echo "pytest exit $?" >> "$OUT/py312-tests.log") &
tests=$!
cp "$U/gpu-loop-lite-compiled-r4b.json" benchmarks/results/ 2>/dev/null
common=(--repo "$U/flashhead" --model-type lite --compile --compile-scope blocks --cache-dir "$U/b16cache"
        --max-batch 16 --max-streams 16 --baseline gpu-loop-lite-compiled-r4b)
timeout 300 python3 benchmarks/gpu_server.py "${common[@]}" --fresh-cache --provision-cache --scenarios "" \
  --name gpu-streams-lite-b16-provision 2>&1 | tail -6
wait $tests; tail -4 "$OUT/py312-tests.log"
timeout 290 python3 benchmarks/gpu_server.py "${common[@]}" --lazy-graphs --duration 15 \
  --scenarios throughput:1,realtime:10,realtime:12,realtime:14,realtime:16 --name gpu-streams-lite-b16 2>&1 | tail -60
