#!/usr/bin/env bash
# Round 6, call 2, right after gpu_round6a.sh on the same machine (BUNDLE=.device/r4 carried: ffprobe.xz;
# about 8 minutes): the server and media suites on the device's Python 3.12 (as gpu_round5b.sh: the browser
# test and the LiveKit/Pipecat adapters are CI's), then the compiled Lite engine at the `blocks` default
# against itself eager, B = 1 and 2 (both the DiT step and the block swapped out), and its nvJPEG files;
# with the time left, the VAE channels-last and nvJPEG-overlap levers at B = 16.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
py312_suite 300 4
timeout 240 python3 benchmarks/gpu_batching.py --repo "$U/flashhead" --model-type lite --mode compiled --batches "" \
  --check-compiled --cache-dir "$U/checkcache" --name gpu-batching-lite-blocks-check 2>&1 | grep -v "^ *{" | tail -12
left=$((570 - SECONDS))  # what the call has left: the two levers the B = 16 profile points at (gpu_round5c.sh)
if [ "$left" -gt 200 ]; then
  timeout "$left" python3 benchmarks/gpu_levers.py --repo "$U/flashhead" --batches 16 --chunks 3 --deviation-chunks 1 \
    --cache-dir "$U/leverscache" --name gpu-levers-lite-b16-r6 2>&1 | grep -v "^ \|^-\|^Name\|profile" | tail -16
fi
