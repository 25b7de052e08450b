#!/usr/bin/env bash
# First of back-to-back device calls (about 5 minutes): unpack the cp312 bundle into .device/u (kept on the
# warm machine for the next calls), FlashHead Pro through the server on the default engine (`accept smoke`
# with the PyAV fallback, as on a host without the ffmpeg programs, and the rtx4090-pro profile), then
# FlashHead's own compiled streaming loop for Lite, the baseline the next call's single stream is compared to.
# BUNDLE (default .device/r3) holds site.tar.xz, ffmpeg.xz and flashhead/ (see gpu_round3.sh).
set -uo pipefail
BUNDLE=${BUNDLE:-.device/r3}
U=.device/u
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 NCCL_NVLS_ENABLE=0
rm -rf "$U" && mkdir -p "$U/site" "$U/bin"
xz -dc "$BUNDLE/site.tar.xz" | tar -x -C "$U/site" || exit 1
xz -dc "$BUNDLE/ffmpeg.xz" > "$U/bin/ffmpeg" && chmod 755 "$U/bin/ffmpeg"
cp -r "$BUNDLE/flashhead" "$U/flashhead"
export PYTHONPATH=$PWD/$U/site PATH="$PWD/$U/bin:$PATH"
{ python3 --version; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; free -g | head -2; } > "$OUT/env.txt" 2>&1
# Pro's smoke reads media facts with PyAV here: no ffprobe on PATH (a host with the programs uses them).
timeout 200 python3 benchmarks/gpu_server.py --repo "$U/flashhead" --model-type pro --max-batch 1 --max-streams 1 \
  --smoke --profile rtx4090-pro --scenarios "" --name gpu-server-pro-fast-smoke-r4 2>&1 | tail -20
timeout 300 python3 benchmarks/gpu_flashhead_loop.py --repo "$U/flashhead" --mode compiled --cache-dir "$U/loopcache" \
  --chunks 30 --name gpu-loop-lite-compiled-r4 2>&1 | tail -6
