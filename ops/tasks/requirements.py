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

# `resolve`: a real resolver run of the filtered file against the venv (torch already installed), with
# the play's package source. Whatever would replace torch/torchvision/flash-attn, or install one of
# their requirements at a version they do not accept (FlashHead pins nvidia-nccl-cu12==2.27.3 where
# torch 2.7.1 needs 2.26.2), is reported and its requirement line skipped; the same for lines pip
# names in a conflict it cannot resolve. The file is rewritten with what is left, which then installs
# without touching torch. Prints `@@resolved {"skipped": [...], "install": [...]}`; exit 3 when pip
# still fails with no line left to blame.
RESOLVE = r'''
import json, os, re, subprocess, sys, tempfile
from importlib import metadata
from pip._vendor.packaging.requirements import Requirement
path, owned, options = sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
owned = {norm(n) for n in owned}
needs = {}  # requirement name -> [(owner, Requirement)] of the installed owned distributions
for dist in metadata.distributions():
    if norm(dist.metadata["Name"]) not in owned:
        continue
    for line in dist.requires or []:
        r = Requirement(line)
        if r.marker is None or r.marker.evaluate({"extra": ""}):
            needs.setdefault(norm(r.name), []).append((f"{dist.metadata['Name']} {dist.version}", r))
def name_of(line):
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return norm(m.group(1)) if m else ""
lines = [x.strip() for x in open(path, encoding="utf-8").read().splitlines() if x.strip()]
skipped, install = [], []
def skip(names, why):
    global lines
    hit = [x for x in lines if name_of(x) in names]
    for x in hit:
        skipped.append(f"{x}: {why}")
    lines = [x for x in lines if x not in hit]
    return bool(hit)
for attempt in range(20):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    if not lines:
        break
    report_path = tempfile.mktemp(suffix=".json")
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--disable-pip-version-check",
               "--no-input", "--report", report_path, *options, "-r", path]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        text = done.stdout + done.stderr
        asked = {norm(n) for n in re.findall(r"The user requested ([A-Za-z0-9][A-Za-z0-9._-]*)", text)}
        told = [x.strip() for x in text.splitlines()]
        header = "The conflict is caused by:"
        cause = told.index(header) + 1 if header in told else 0
        said = "; ".join(x for x in told[cause:cause + 4] if x and not x.startswith("To fix")) if cause else ""
        fights = asked & set(needs)
        if fights:
            for name in fights:
                owner, r = needs[name][0]
                skip({name}, f"{owner} needs {r} (pip cannot resolve both: {said or 'see its output'})")
            continue
        if skip(asked, f"pip cannot resolve it with the rest: {said or text[-300:].strip()}"):
            continue
        print("@@resolved " + json.dumps({"skipped": skipped, "install": install, "error": text[-1500:]}))
        sys.exit(3)
    report = json.load(open(report_path, encoding="utf-8"))
    os.unlink(report_path)
    items = [(norm(i["metadata"]["name"]), i["metadata"]["version"], i["metadata"].get("requires_dist") or [])
             for i in report.get("install", [])]
    install = [f"{n}=={v}" for n, v, _ in items]
    breaking = {}
    for name, version, _ in items:
        if name in owned:
            breaking[name] = f"it would replace the installed {name} with {version}"
        for owner, r in needs.get(name, []):
            if r.specifier and not r.specifier.contains(version, prereleases=True):
                breaking[name] = f"{owner} needs {r}, this would install {version}"
    if not breaking:
        break
    for name, why in breaking.items():
        direct = {name} & {name_of(x) for x in lines}
        requirers = {n for n, _, requires in items
                     if any(norm(Requirement(r).name) == name for r in requires if "extra ==" not in r)}
        if not skip(direct or requirers, why + "; skipped so torch stays as the play installed it"):
            print("@@resolved " + json.dumps({"skipped": skipped, "install": install,
                                              "error": f"{name}: {why}, and no requirement line brings it"}))
            sys.exit(3)
print("@@resolved " + json.dumps({"skipped": skipped, "install": install}))
'''
