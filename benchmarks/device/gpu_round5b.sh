#!/usr/bin/env bash
# Round 5, call 2 of 2, right after gpu_round5a.sh (or 5d) on the same machine (BUNDLE=.device/r4 carried:
# ffprobe.xz; about 5 minutes): the server and media suites on the device's Python 3.12 with the real ffmpeg
# and ffprobe, every test logged. (FlashHead's compiled loop, once after it here, did not finish its cold
# compile within 150 s; the single-stream ratio stays the round-4 one.) The live view's browser test and the
# LiveKit/Pipecat adapters' tests are left to CI (no Chromium, LiveKit or Pipecat wheels on this machine);
# they run there on Python 3.11.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
py312_suite 420 22
