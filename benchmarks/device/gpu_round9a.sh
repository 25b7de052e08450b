#!/usr/bin/env bash
# Round 9, one call (BUNDLE=.device/r3 and the simplejpeg wheel in .device/r5 carried; about 7 minutes), issue 20:
# JPEG off the GPU. Max batch 16, realtime 16 and 14 Lite streams and one stream's throughput with the frames
# encoded on the host (FLASHHEAD_JPEG_ON_DEVICE=0: the scheduler's output thread, libjpeg-turbo in 16 threads;
# cold compile cache), then the same with nvJPEG (the default) on the warm cache, in one machine start.
set -uo pipefail
source benchmarks/device/gpu_round4_setup.sh || exit 1
if [ ! -d .device/jpeg-site ]; then
  for wheel in .device/r5/simplejpeg-*.whl; do python3 -m zipfile -e "$wheel" .device/jpeg-site; done
fi
export PYTHONPATH=$PWD/.device/jpeg-site:$PYTHONPATH
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc;
  python3 -c 'import simplejpeg; print("simplejpeg", simplejpeg.__version__)'; } > "$OUT/env.txt" 2>&1
for jpeg in 0 1; do
  FLASHHEAD_JPEG_ON_DEVICE=$jpeg timeout $((570 - SECONDS)) python3 benchmarks/gpu_server.py --repo "$U/flashhead" \
    --model-type lite --compile --compile-scope blocks --cache-dir "$U/b16cache" $([ "$jpeg" = 0 ] && echo --fresh-cache) \
    --max-batch 16 --max-streams 16 --duration 12 --scenarios realtime:16,realtime:14,throughput:1 \
    --name "gpu-streams-lite-b16-jpeg-device$jpeg-r9" 2>&1 | grep -A3 '"realtime\|"throughput' | grep -v report | head -18
done
