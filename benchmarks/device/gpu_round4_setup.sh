# Sourced by the round-4 device calls: the cp312 bundle unpacked once into .device/u (kept on the warm
# machine between back-to-back calls), PATH and PYTHONPATH set. BUNDLE (default .device/r3) holds
# site.tar.xz, ffmpeg.xz and flashhead/ (gpu_round3.sh says what); ffprobe.xz comes with a later call
# (the three together are over one call's 64 MiB). site.tar.xz is wheels unpacked, uncompiled (as `pip
# download` gives them); numpy is the image's.
BUNDLE=${BUNDLE:-.device/r3}
U=.device/u
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
# One bytecode tree for everything a start imports, the image's own venv included: the round-6 profile saw
# 2,212 modules compiled from source at every start although the carried ones had bytecode (docs/gpu.md).
export PYTHONPYCACHEPREFIX=$PWD/$U/pycache
if [ ! -d "$U/site" ] && [ -f "$BUNDLE/site.tar.xz" ]; then
  mkdir -p "$U/site" "$U/bin"
  xz -dc "$BUNDLE/site.tar.xz" | tar -x -C "$U/site" || return 1
  xz -dc "$BUNDLE/ffmpeg.xz" > "$U/bin/ffmpeg" && chmod 755 "$U/bin/ffmpeg"
  cp -r "$BUNDLE/flashhead" "$U/flashhead"
  # Bytecode, as a host has it: pip compiles what it installs, provisioning's verify step (and the Dockerfile)
  # compiles FlashHead's clone. Without it every start compiled transformers' and diffusers' sources again.
  started=$SECONDS
  python3 -m compileall -q -j 0 "$U/site" "$U/flashhead" inference ops benchmarks \
    $(python3 -c 'import sysconfig; p = sysconfig.get_paths(); print(*{p["stdlib"], p["purelib"], p["platlib"]})') \
    >/dev/null 2>&1  # the prefix replaces every __pycache__, the standard library's too
  echo "bytecode compiled in $((SECONDS - started)) s"
fi
if [ -f "$BUNDLE/ffprobe.xz" ] && [ ! -x "$U/bin/ffprobe" ]; then
  xz -dc "$BUNDLE/ffprobe.xz" > "$U/bin/ffprobe" && chmod 755 "$U/bin/ffprobe"
fi
[ -d "$U/site" ] || { echo "no bundle in $U: run the first call of the round with BUNDLE carried"; return 1; }
export PYTHONPATH=$PWD/$U/site PATH="$PWD/$U/bin:$PATH"

stub_suite_programs() {  # the suite's start-up check names programs only other suites use; the image lacks them
  mkdir -p "$U/fake-bin"
  for program in sshd ssh-keygen sudo ip git kubectl nsenter unshare mount ps useradd chromium chromedriver; do
    command -v "$program" >/dev/null || ln -sf /bin/false "$U/fake-bin/$program"
  done
}

py312_suite() {  # $1: time limit (s), $2: lines of the log's tail to print. The server and media suites on the
  # device's Python, every test logged; the browser test and the LiveKit/Pipecat adapters need what the image lacks.
  stub_suite_programs
  { ffmpeg -version | head -1; ffprobe -version | head -1; python3 -m pip list 2>/dev/null |
    grep -i -E '^(torch|numpy|pillow|av|starlette|uvicorn|websockets|httpx|soxr|pytest|hypothesis) '; } > "$OUT/py312-env.txt" 2>&1
  PATH="$PATH:$PWD/$U/fake-bin" timeout "$1" python3 -m pytest -v -p no:cacheprovider -n 12 --durations=15 tests/inference \
    --ignore=tests/inference/test_live_view.py --ignore=tests/inference/integrations -W ignore::DeprecationWarning \
    > "$OUT/py312-tests.log" 2>&1; echo "pytest exit $?" >> "$OUT/py312-tests.log"
  grep -E "FAILED|ERROR" "$OUT/py312-tests.log" | head -30; tail -"$2" "$OUT/py312-tests.log"
}
