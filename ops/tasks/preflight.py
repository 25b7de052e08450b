"""Preflight: stop before changing anything on a host that cannot run FlashHead; prepare model_root.

Blockers: no NVIDIA GPU, a driver too old for CUDA 12.8 (< 570.26), a GPU older than sm_80
(FlashAttention 2), an unsupported OS or architecture, less free disk than the venv, checkpoints
and caches still need (what model_root already holds counts as done). The only change it makes is
creating model_root and its state dir, owned by the login user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import Task

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

GIB = 2**30
SCRIPT = r"""
root=__ROOT__; state_dir=__STATE__; need=__NEED__
min_driver=__MIN_DRIVER__; min_cc=__MIN_CC__; supported=__SUPPORTED__
blocked=0
block() { echo "@@blocker $1|$2"; blocked=1; }
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }
. /etc/os-release 2>/dev/null || true
os="${ID:-unknown}:${VERSION_ID:-}"; arch=$(uname -m)
echo "@@os ${PRETTY_NAME:-$os} $arch"
case " $supported " in *" $os "*) ;; *) block "unsupported OS: ${PRETTY_NAME:-$os}" \
  "use one of: $supported (ID:VERSION_ID from /etc/os-release)";; esac
[ "$arch" = x86_64 ] || block "unsupported architecture: $arch" \
  "the CUDA 12.8 and flash-attn wheels this play installs are for x86_64"
if ! command -v nvidia-smi >/dev/null 2>&1; then
  block "no NVIDIA GPU: nvidia-smi not found" \
    "install the NVIDIA driver (>= $min_driver) on a host with an NVIDIA GPU; this play never installs the driver"
elif ! gpus=$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader,nounits 2>&1); then
  block "nvidia-smi failed: $(echo "$gpus" | head -n 1)" \
    "the NVIDIA driver is not working: check 'nvidia-smi' on the host (reboot after a driver install?)"
else
  while IFS=, read -r name driver cc; do
    driver=${driver// /}; cc=${cc// /}
    echo "@@gpu $name|$driver|$cc"
    ver_ge "$driver" "$min_driver" || block "NVIDIA driver $driver is too old for CUDA 12.8 (needs >= $min_driver)" \
      "upgrade the driver to R570 or newer (e.g. apt install nvidia-driver-570) and reboot; this play never touches it"
    ver_ge "$cc" "$min_cc" || \
      block "GPU $name is compute capability $cc: FlashAttention 2 needs >= $min_cc (Ampere, Ada, Hopper)" \
      "use an sm_80+ GPU (A100, A10, L4, L40S, RTX 30xx/40xx/50xx, H100)"
  done <<< "$gpus"
fi
p=$root; while [ ! -e "$p" ]; do p=$(dirname "$p"); done
free=$(df -P -B1 "$p" | awk 'NR==2 {print $4}')
used=0; [ -d "$root" ] && used=$(du -sxb "$root" 2>/dev/null | cut -f1)
still=$(( need > used ? need - used : 0 ))
echo "@@disk $p $free $used $need"
[ "$free" -ge "$still" ] || block \
  "not enough free disk at $p: $((free / 1048576)) MiB free, $((still / 1048576)) MiB still needed" \
  "free space there, or put model_root on a larger disk (--var model_root=/data/flashhead)"
[ "$blocked" = 0 ] || exit 2
echo "@@user $(id -un) $(id -gn)"
if [ -d "$state_dir" ] && [ -w "$state_dir" ] && [ -w "$root" ]; then exit 0; fi
echo "@@pending create $root and $state_dir owned by $(id -un)"; exit 1
"""


def needed_disk_bytes(vars: dict[str, Any]) -> int:
    """Free space model_root needs (venv, checkpoints of the chosen model type, caches), with margin."""
    sizes = vars.get("disk_gib") or {}
    types = [vars.get("model_type", "lite")]
    gib = sum(float(sizes.get(key, 0)) for key in ("venv", "wav2vec2", "caches"))
    gib += sum(float(sizes.get(f"checkpoints_{t}", 0)) for t in types)
    return int(gib * GIB * float(vars.get("disk_margin", 1.2)))


class Preflight(Task):
    sudo_apply = True

    def check_script(self, ctx: Context) -> str:
        v = ctx.vars
        values = {"__ROOT__": quote(v["model_root"]), "__STATE__": quote(v["state_dir"]),
                  "__NEED__": str(needed_disk_bytes(v)), "__MIN_DRIVER__": quote(str(v["min_driver"])),
                  "__MIN_CC__": quote(str(v["min_compute_capability"])),
                  "__SUPPORTED__": quote(" ".join(v["supported_os"]))}
        script = SCRIPT
        for key, value in values.items():
            script = script.replace(key, value)
        return script

    def parse_check(self, ctx: Context, result: Result) -> State:
        found = parse_lines(result.stdout)
        gpus = [g.split("|")[0] for g in found.get("gpu", [])]
        summary = f"{found.get('os', ['?'])[0]}; {', '.join(gpus) or 'no GPU'}"
        disk = found.get("disk", [""])[0].split()
        if len(disk) == 4:
            summary += f"; {int(disk[1]) / GIB:.1f} GiB free at {disk[0]}"
        if result.exit_status == 0:
            return State(done=True, summary=summary)
        return State(done=False, summary=summary, changes=found.get("pending", []))

    def blocked(self, ctx: Context, result: Result) -> tuple[str, str | None]:
        blockers = [line.split("|", 1) for line in parse_lines(result.stdout).get("blocker", [])]
        if not blockers:
            return super().blocked(ctx, result)
        message = "preflight: this host cannot run FlashHead; nothing was changed: " + "; ".join(
            b[0] for b in blockers)
        return message, "; ".join(b[1] for b in blockers if len(b) > 1)

    def apply_script(self, ctx: Context, state: State | None) -> str:
        owner = ctx.vars.get("owner") or ""
        who = quote(owner) if owner else '"${SUDO_USER:-$(id -un)}"'
        return (f"owner={who}\n"
                f"install -d -m 0755 -o \"$owner\" -g \"$(id -gn \"$owner\")\" "
                f"{quote(ctx.vars['model_root'])} {quote(ctx.vars['state_dir'])}\n")


def parse_lines(text: str) -> dict[str, list[str]]:
    """`@@key value` lines → {key: [value, ...]}."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("@@"):
            key, _, value = line[2:].partition(" ")
            found.setdefault(key, []).append(value)
    return found
