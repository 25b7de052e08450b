"""The CUDA toolkit from NVIDIA's apt repository (cuda-keyring + `cuda-toolkit-12-8`).

Done when `{cuda_home}/bin/nvcc --version` reports the pinned release. Installs the toolkit
package only, never `cuda` or `cuda-drivers`: the driver is the host owner's business.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import DONE, Task

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

_RELEASE = re.compile(r"release (\d+\.\d+), V([\d.]+)")


def apt_package(version: str) -> str:
    """`12.8` → `cuda-toolkit-12-8`."""
    return "cuda-toolkit-" + version.replace(".", "-")


class CudaToolkit(Task):
    sudo_apply = True

    def check_script(self, ctx: Context) -> str:
        nvcc = quote(f"{ctx.arg('cuda_home')}/bin/nvcc")
        version = quote(str(ctx.arg("cuda_version")))
        release = quote(f"release {ctx.arg('cuda_version')},")
        return (f"[ -x {nvcc} ] || {{ echo '@@absent'; exit 1; }}\n"
                f"out=$({nvcc} --version 2>&1) || {{ echo \"$out\"; exit 1; }}\necho \"$out\"\n"
                f"echo \"$out\" | grep -qF {release} && exit 0\n"
                f"echo '@@wrong-release' {version}; exit 1\n")

    def parse_check(self, ctx: Context, result: Result) -> State:
        cuda_home, version = ctx.arg("cuda_home"), str(ctx.arg("cuda_version"))
        match = _RELEASE.search(result.stdout)
        if result.exit_status == DONE and match:
            return State(done=True, summary=f"nvcc {match[2]} at {cuda_home}")
        found = f"nvcc reports {match[1]}" if match else f"no nvcc at {cuda_home}/bin"
        return State(done=False, summary=found,
                     changes=[f"install {apt_package(version)} from NVIDIA's apt repo ({found})"])

    def apply_script(self, ctx: Context, state: State | None) -> str:
        repo = ctx.arg("cuda_repo_url")
        keyring = f"cuda-keyring_{ctx.arg('cuda_keyring_version')}_all.deb"
        package = apt_package(str(ctx.arg("cuda_version")))
        distro = ctx.arg("cuda_distro", "auto")
        detect = ('. /etc/os-release\ndistro="${ID}${VERSION_ID//./}"\n' if distro == "auto"
                  else f"distro={quote(distro)}\n")
        # the URL is data: quoted, except for the one expansion it may hold, ${distro}
        url = '"${distro}"'.join(quote(part) for part in f"{repo}/{keyring}".split("${distro}"))
        return (detect
                + "export DEBIAN_FRONTEND=noninteractive\n"
                + f"tmp=$(mktemp -d); keyring=\"$tmp\"/{quote(keyring)}\n"
                + f"curl -fsSL --retry 3 -o \"$keyring\" {url}\n"
                + "dpkg -i \"$keyring\"\n"
                + "rm -rf \"$tmp\"\n"
                + "apt-get update -q\n"
                + f"apt-get install -y -q --no-install-recommends {quote(package)}\n")
