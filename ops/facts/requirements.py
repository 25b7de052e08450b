"""What a host needs to run FlashHead, judged from its facts and the play's vars: the one owner.

`check_host(facts, vars)` is the judgement behind `flashhead facts` (its verdicts), `flashhead
doctor` (its host checks) and the playbook's preflight (its blockers: the preflight check runs this
module on the host, over SSH and in the exported script alike). Every threshold is a play var:
`min_driver`, `min_compute_capability`, `supported_os`, `supported_arch`, `disk_gib` and
`disk_margin`, so `--var disk_gib=...` changes all three. Standard library only, for that reason.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

GIB = 2**30


@dataclass
class Verdict:
    """One requirement: `ok` None when it could not be judged (no GPU: no driver to judge)."""

    key: str  # stable: gpu, driver, gpu_arch, os, arch, disk, cuda
    name: str  # what doctor prints
    ok: bool | None
    detail: str  # what was found
    problem: str = ""  # the sentence that says why the host cannot run FlashHead (when not ok)
    remedy: str = ""
    blocks: bool = True  # preflight stops the play when this one fails


def version_tuple(text: Any) -> tuple[int, ...] | None:
    """`570.26` → (570, 26); None when it is not dotted numbers."""
    try:
        return tuple(int(part) for part in str(text).strip().split("."))
    except ValueError:
        return None


def at_least(found: Any, wanted: Any) -> bool:
    have, need = version_tuple(found), version_tuple(wanted)
    return have is not None and need is not None and have >= need


def disk_needed_bytes(vars: dict[str, Any]) -> int:
    """Free space model_root needs: every `disk_gib` entry (checkpoints only for the model type), with margin."""
    model_type = str(vars.get("model_type", "lite"))
    sizes = vars.get("disk_gib") or {}
    gib = sum(float(size) for name, size in sizes.items()
              if not str(name).startswith("checkpoints_") or name == f"checkpoints_{model_type}")
    return int(gib * GIB * float(vars.get("disk_margin", 1.2)))


def check_host(facts: dict[str, Any], vars: dict[str, Any]) -> list[Verdict]:
    """Judge a host's facts against the play's requirements."""
    verdicts = _gpu(facts["gpu"], vars)
    os_ = facts["os"]
    supported = [str(x) for x in vars.get("supported_os") or []]
    release = f"{os_.get('distro')}:{os_.get('version')}"
    verdicts.append(Verdict("os", "OS", release in supported, f"{os_.get('pretty_name')} ({release})",
                            f"unsupported OS: {os_.get('pretty_name')} ({release})",
                            f"use one of: {' '.join(supported)} (ID:VERSION_ID from /etc/os-release)"))
    arches = [str(x) for x in vars.get("supported_arch") or []]
    verdicts.append(Verdict("arch", "architecture", os_.get("arch") in arches, str(os_.get("arch")),
                            f"unsupported architecture: {os_.get('arch')}",
                            f"the CUDA and flash-attn wheels this play installs are for {', '.join(arches)}"))
    verdicts.append(_disk(facts["disk"], vars))
    cuda = str(vars.get("cuda_version", ""))
    found = [t["path"] for t in facts.get("cuda", {}).get("toolkits", []) if t.get("version") == cuda]
    verdicts.append(Verdict("cuda", f"CUDA {cuda} installed", bool(found), ", ".join(found) or "not yet",
                            blocks=False))
    return verdicts


def _gpu(gpu: dict[str, Any], vars: dict[str, Any]) -> list[Verdict]:
    min_driver, min_cc = str(vars.get("min_driver")), str(vars.get("min_compute_capability"))
    cuda = str(vars.get("cuda_version", ""))
    names = ", ".join(g["name"] for g in gpu["gpus"])
    verdicts = [Verdict("gpu", "NVIDIA GPU", bool(gpu["present"]), names or str(gpu.get("error")),
                        f"no NVIDIA GPU: {gpu.get('error')}",
                        f"install the NVIDIA driver (>= {min_driver}) on a host with an NVIDIA GPU and check "
                        "`nvidia-smi` there (reboot after a driver install?); this play never installs the driver")]
    if not gpu["present"]:
        return [*verdicts, Verdict("driver", f"driver supports CUDA {cuda}", None, "no GPU to ask"),
                Verdict("gpu_arch", "FlashAttention 2 arch", None, "no GPU to ask")]
    driver = gpu.get("driver")
    major = str(min_driver).split(".")[0]
    verdicts.append(Verdict(
        "driver", f"driver supports CUDA {cuda}", at_least(driver, min_driver),
        f"driver {driver}, needs ≥ {min_driver}",
        f"NVIDIA driver {driver} is too old for CUDA {cuda} (needs >= {min_driver})",
        f"upgrade the driver to {min_driver} or newer (e.g. apt install nvidia-driver-{major}) and reboot; "
        "this play never touches the driver"))
    old = [g for g in gpu["gpus"] if not at_least(g["compute_capability"], min_cc)]
    seen = ", ".join(f"sm_{str(g['compute_capability']).replace('.', '')}" for g in gpu["gpus"])
    verdicts.append(Verdict(
        "gpu_arch", "FlashAttention 2 arch", not old, f"{seen}, needs ≥ sm_{min_cc.replace('.', '')}",
        "; ".join(f"GPU {g['name']} is compute capability {g['compute_capability']}: FlashAttention 2 needs "
                  f">= {min_cc} (Ampere, Ada, Hopper)" for g in old),
        "use an sm_80+ GPU (A100, A10, L4, L40S, RTX 30xx/40xx/50xx, H100)"))
    return verdicts


def _disk(disk: dict[str, Any], vars: dict[str, Any]) -> Verdict:
    need, used, free = disk_needed_bytes(vars), int(disk.get("used_bytes") or 0), disk.get("free_bytes")
    still = max(need - used, 0)
    if free is None:
        return Verdict("disk", "disk", None, f"df printed nothing for {disk.get('path')}")
    detail = (f"{free / GIB:.1f} GiB free at {disk.get('path')}, {still / GIB:.1f} GiB still needed "
              f"(of {need / GIB:.1f} GiB for the venv, checkpoints and caches)")
    return Verdict("disk", "disk", free >= still, detail,
                   f"not enough free disk at {disk.get('path')}: {free // 2**20} MiB free, {still // 2**20} MiB "
                   "still needed",
                   f"free space on {disk.get('mount') or disk.get('path')}, or put model_root on a larger disk "
                   "(--var model_root=/data/flashhead)")


def blockers(verdicts: list[Verdict]) -> list[Verdict]:
    """The failed requirements that stop a play."""
    return [v for v in verdicts if v.blocks and v.ok is False]


def summary(verdicts: list[Verdict]) -> dict[str, Any]:
    """The verdicts as `flashhead facts` reports them."""
    return {"ok": not blockers(verdicts), "requirements": [asdict(v) for v in verdicts]}


def main() -> int:
    """On the host (preflight): the probe output in $FLASHHEAD_FACTS, the vars as JSON in argv[1].
    Prints one `@@verdict` line per requirement and a `@@blocker problem|remedy` line per blocker
    (what the exported script shows); exits 2 when one blocks."""
    from ops.facts.gather import parse_facts

    facts = parse_facts(os.environ.get("FLASHHEAD_FACTS", ""), "host")
    verdicts = check_host(facts, json.loads(sys.argv[1]))
    for verdict in verdicts:
        print("@@verdict " + json.dumps(asdict(verdict)))
    for verdict in blockers(verdicts):
        print(f"@@blocker {verdict.problem}|{verdict.remedy}")
    return 2 if blockers(verdicts) else 0
