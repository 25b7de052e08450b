"""FlashHead's requirements.txt against the play's pins: what to install, what conflicts.

`PROGRAM` runs on the host with the venv's Python (stdlib only): it reads the requirements file,
leaves out what other steps own (torch, torchvision, flash-attn), reports any pin that disagrees
with the play's and keeps the play's, checks what is installed, and in `write` mode writes the
filtered file that pip installs.
"""

from __future__ import annotations

PROGRAM = r'''
import json, re, sys
from importlib import metadata
mode, path, out, pins, owned = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = {norm(k): str(v) for k, v in pins.items()}; owned = {norm(n) for n in owned}
lines, conflicts, missing = [], [], []
try:
    raw_lines = open(path, encoding="utf-8").read().splitlines()
except FileNotFoundError:
    raw_lines = []  # a repo without requirements: nothing to install
for raw in raw_lines:
    line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
    if not line or line.startswith("-"):
        continue
    if "://" in line or " @ " in line:
        lines.append(line)  # a URL requirement: installed as given, its version cannot be checked here
        continue
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)", line)
    if not m:
        continue
    name, spec = norm(m.group(1)), m.group(3).replace(" ", "")
    exact = spec[2:] if spec.startswith("==") else None
    if name in pins and spec and (exact is None or exact.split("+")[0] != pins[name].split("+")[0]):
        conflicts.append(f"requirements.txt wants {name}{spec}, the play pins {name}=={pins[name]}: keeping the play's")
    if name in owned:
        continue
    if name in pins:
        line, exact = f"{name}=={pins[name]}", pins[name]
    lines.append(line)
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have is None or (exact is not None and have.split("+")[0] != exact.split("+")[0]):
        missing.append(f"{name} (want {exact or 'any'}, have {have or 'none'})")
if mode == "write":
    with open(out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
print("@@requirements " + json.dumps({"install": lines, "conflicts": conflicts, "missing": missing}))
sys.exit(1 if missing else 0)
'''
