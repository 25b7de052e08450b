#!/usr/bin/env bash
# Round 8, call 2 (straight after 8a on the same machine; about 6 minutes): the levers at B = 16 again, with the
# VAE traced in channels-last memory from its first call (dynamo reset first) and its frame deviation, and the
# FP8 part the sixth run did not reach.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
timeout 400 python3 benchmarks/gpu_levers.py --repo "$U/flashhead" --batches 16 --chunks 4 --deviation-chunks 2 \
  --cache-dir "$U/leverscache" --name gpu-levers-lite-r8 2>&1 | grep -v "^ \|^-\|^Name\|profile\|Warning" | tail -20
