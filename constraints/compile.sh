#!/usr/bin/env bash
# Regenerate the constraints files from pyproject.toml with uv's universal resolver (one file covers
# every supported Python; versions that differ per Python carry markers). Run after changing a
# dependency, then run CI (.ci/run installs from dev.txt) before committing them.
#   server.txt  the [server] extra alone, Python >= 3.10: what the playbook's inference_module step and
#               the Dockerfile install on a GPU host (beside FlashHead's own requirements)
#   dev.txt     the operator's CLI + [server] + [dev] + the adapters' [livekit] and [pipecat], Python >= 3.11
#               (kmock needs 3.11): what CI installs. pipecat-ai pins soxr ~= 1.0, so dev.txt has soxr 1.0
#               while server.txt (no pipecat) keeps the newest
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-uv}
python3 - <<'PY' > constraints/.server.in
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["server"]))
PY
"$uv" pip compile constraints/.server.in --universal --python-version 3.10 --no-header --no-annotate \
  -o constraints/server.txt
"$uv" pip compile pyproject.toml --extra server --extra dev --extra livekit --extra pipecat --universal --python-version 3.11 --no-header \
  --no-annotate -o constraints/dev.txt
rm constraints/.server.in
