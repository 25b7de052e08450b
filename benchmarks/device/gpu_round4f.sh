#!/usr/bin/env bash
# Round 4, second machine, call 2 of 2 (ffprobe.xz carried; about 5 minutes): the server and media suites on the
# device's Python 3.12 with the real ffmpeg and ffprobe, alone; then FlashHead's own compiled loop for Lite on
# this machine (the single-stream ratio against the previous call's throughput:1).
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
mkdir -p "$U/fake-bin"  # the suite's start-up check names programs only other suites use; the image lacks them
for program in sshd ssh-keygen sudo ip git kubectl nsenter unshare mount ps useradd chromium chromedriver; do
  command -v "$program" >/dev/null || ln -sf /bin/false "$U/fake-bin/$program"
done
PATH="$PATH:$PWD/$U/fake-bin" timeout 400 python3 -m pytest -v -p no:cacheprovider -n 8 tests/inference \
  -W ignore::DeprecationWarning > "$OUT/py312-tests.log" 2>&1; echo "pytest exit $?" >> "$OUT/py312-tests.log"
tail -15 "$OUT/py312-tests.log"
timeout 220 python3 benchmarks/gpu_flashhead_loop.py --repo "$U/flashhead" --mode compiled --cache-dir "$U/loopcache" \
  --chunks 30 --name gpu-loop-lite-compiled-r4f 2>&1 | tail -2
