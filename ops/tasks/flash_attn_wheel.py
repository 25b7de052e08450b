"""Which flash-attn build fits this torch: a prebuilt release wheel, or a source build.

Pure functions (stdlib only): the flash_attn task runs this file with the venv's Python on the
host, so the running play and the exported script choose the same way. The release wheels are
named `flash_attn-{version}+cu{cuda major}torch{major.minor}cxx11abi{TRUE|FALSE}-{py}-{py}-linux_x86_64.whl`
and must match torch's C++ ABI flag (`torch._C._GLIBCXX_USE_CXX11_ABI`), which is read, never assumed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from dataclasses import dataclass

GIB = 2**30
BUILD_GIB_PER_JOB = 9  # nvcc on flash-attn's kernels peaks near 9 GB per parallel job


@dataclass(frozen=True)
class TorchBuild:
    """What the venv's torch was built as."""

    python_tag: str  # cp311
    torch_version: str  # 2.7.1+cu128
    cuda_version: str | None  # 12.8 (None: a CPU-only torch)
    cxx11abi: bool
    platform: str = "linux_x86_64"


@dataclass(frozen=True)
class WheelChoice:
    """A release wheel to install (`url`), or why there is none (`reason`: build from source)."""

    url: str | None
    filename: str | None
    reason: str


def torch_series(version: str) -> str:
    """`2.7.1+cu128` → `2.7`."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"not a torch version: {version!r}")
    return f"{match[1]}.{match[2]}"


def select_flash_attn_wheel(version: str, build: TorchBuild, base_url: str, torch_versions: list[str],
                            python_tags: list[str]) -> WheelChoice:
    """The release wheel matching python tag, torch major.minor, CUDA major and cxx11abi — or none."""
    series = torch_series(build.torch_version)
    if build.cuda_version is None:
        return WheelChoice(None, None, f"torch {build.torch_version} is a CPU build: flash-attn needs CUDA torch")
    cuda_major = build.cuda_version.split(".")[0]
    problems = []
    if cuda_major != "12":
        problems.append(f"no release wheel for CUDA {cuda_major} (only cu12)")
    if series not in torch_versions:
        problems.append(f"no release wheel for torch {series} (have {', '.join(torch_versions)})")
    if build.python_tag not in python_tags:
        problems.append(f"no release wheel for {build.python_tag} (have {', '.join(python_tags)})")
    if build.platform != "linux_x86_64":
        problems.append(f"no release wheel for {build.platform}")
    if problems:
        return WheelChoice(None, None, "; ".join(problems))
    abi = "TRUE" if build.cxx11abi else "FALSE"
    filename = (f"flash_attn-{version}+cu{cuda_major}torch{series}cxx11abi{abi}-"
                f"{build.python_tag}-{build.python_tag}-{build.platform}.whl")
    return WheelChoice(f"{base_url.rstrip('/')}/{filename}", filename,
                       f"release wheel for {build.python_tag}, torch {series}, cu{cuda_major}, cxx11abi {abi}")


def build_jobs(mem_total_bytes: int, cpus: int, gib_per_job: float = BUILD_GIB_PER_JOB) -> int:
    """MAX_JOBS for a source build: one job per ~9 GB of RAM, at most one per CPU, at least one."""
    return max(1, min(cpus, int(mem_total_bytes / (gib_per_job * GIB))))


def explain_import_error(text: str, build: TorchBuild | None = None) -> str | None:
    """Explain `undefined symbol` import failures: the flash-attn binary was built for another torch."""
    match = re.search(r"undefined symbol: (\S+)", text)
    if not match:
        return None
    symbol = match[1]
    torch_symbol = any(part in symbol for part in ("3c10", "2at", "5torch")) or "c10::" in symbol
    where = "torch's C++ library (c10::Error…)" if "3c105Error" in symbol else "torch's C++ library"
    if not torch_symbol:
        return f"flash_attn's extension needs a missing symbol {symbol}: reinstall flash-attn for this torch"
    about = ""
    if build is not None:
        about = (f" The venv has torch {build.torch_version} (CUDA {build.cuda_version}, "
                 f"cxx11abi {'TRUE' if build.cxx11abi else 'FALSE'}, {build.python_tag}).")
    return (f"ABI mismatch: flash_attn_2_cuda references {symbol} from {where}, which this torch does not "
            f"export. The flash-attn binary was built for a different torch major.minor or C++ ABI "
            f"(_GLIBCXX_USE_CXX11_ABI).{about} Install the release wheel whose name matches torch's "
            f"major.minor and cxx11abi flag, or build from source against this torch "
            f"(pip install --no-build-isolation flash-attn).")


def read_torch_build() -> TorchBuild:
    """Ask the installed torch (in this interpreter) what it was built as."""
    import torch  # noqa: PLC0415 - only on the host, inside the venv

    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return TorchBuild(tag, torch.__version__, torch.version.cuda, bool(torch._C._GLIBCXX_USE_CXX11_ABI))


def _mem_total() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv: list[str]) -> int:
    """On the host: `plan CONFIG_JSON` prints `url URL` or `build MAX_JOBS`; `verify` imports flash_attn."""
    if argv[0] == "plan":
        config = json.loads(argv[1])
        build = read_torch_build()
        choice = select_flash_attn_wheel(config["version"], build, config["base_url"], config["torch_versions"],
                                         config["python_tags"])
        print(f"@@choice {choice.reason}", file=sys.stderr)
        if choice.url and not config.get("source_build"):
            print(f"url {choice.url}")
        else:
            print(f"build {build_jobs(_mem_total(), os.cpu_count() or 1, config.get('gib_per_job', 9))}")
        return 0
    try:
        import flash_attn  # noqa: F401, PLC0415
        import flash_attn_2_cuda  # noqa: F401, PLC0415
    except ImportError as exc:
        found: TorchBuild | None = None
        with contextlib.suppress(ImportError):
            found = read_torch_build()
        print(explain_import_error(str(exc), found) or f"flash_attn does not import: {exc}", file=sys.stderr)
        return 3
    import torch  # noqa: PLC0415

    print(f"@@torch {torch.__version__}")
    print("@@flash_attn imports")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
