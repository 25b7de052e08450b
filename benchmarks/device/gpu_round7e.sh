#!/usr/bin/env bash
# Round 7, call 4 (BUNDLE=.device/r3 carried, a fresh machine; about 2 minutes): the output stage of one B = 16
# chunk, eager: the output thread's JPEG files and frames against the serial path's, byte for byte, and what
# nvJPEG costs from the model's stream, the default stream and the output thread, against the raw copy and
# Pillow in threads (benchmarks/gpu_output_stage.py).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
timeout 150 python3 benchmarks/gpu_output_stage.py --repo "$U/flashhead" --batch 16 --name gpu-output-stage-lite-r7 \
  2>&1 | grep -v "Warning\|warn" | tail -16
