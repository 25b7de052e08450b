"""System packages via apt: done when dpkg says every package is installed.

`apt_mirror` (a Debian/Ubuntu archive URL) writes one extra sources file for sites without the
default archive; the packages themselves are always installed with `--no-install-recommends`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.playbook.model import State
from ops.tasks.base import DONE, Task, words

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context

MIRROR_LIST = "/etc/apt/sources.list.d/flashhead-mirror.list"


class AptPackages(Task):
    sudo_apply = True

    def packages(self, ctx: Context) -> list[str]:
        return [str(p) for p in ctx.arg("packages", [])]

    def check_script(self, ctx: Context) -> str:
        packages = words(self.packages(ctx))
        # one dpkg-query for all packages: it reads the whole status database each time it starts
        script = (f"installed=$(dpkg-query -W -f='${{Package}} ${{Status}}\\n' {packages} 2>/dev/null"
                  " | awk '$NF == \"installed\" && $(NF-1) == \"ok\" {print $1}')\n"
                  f"missing=''\nfor p in {packages}; do\n"
                  "  printf '%s\\n' \"$installed\" | grep -qxF \"${p%%:*}\" || missing=\"$missing $p\"\ndone\n")
        mirror = ctx.arg("apt_mirror")
        if mirror:
            script += (f"grep -qF {quote(mirror)} {MIRROR_LIST} 2>/dev/null || "
                       "{ echo '@@mirror missing'; missing=\"$missing \"; }\n")
        return script + '[ -z "$missing" ] && exit 0; echo "@@missing$missing"; exit 1\n'

    def parse_check(self, ctx: Context, result: Result) -> State:
        missing, mirror = [], False
        for line in result.stdout.splitlines():
            if line.startswith("@@missing"):
                missing = line.split()[1:]
            mirror = mirror or line.startswith("@@mirror")
        changes = [f"install {p}" for p in missing] + ([f"add apt source {ctx.arg('apt_mirror')}"] if mirror else [])
        if result.exit_status == DONE and not changes:
            return State(done=True, summary=f"{len(self.packages(ctx))} packages installed")
        return State(done=False, summary=f"{len(missing)} packages missing", changes=changes,
                     data={"missing": missing})

    def apply_script(self, ctx: Context, state: State | None) -> str:
        script = "export DEBIAN_FRONTEND=noninteractive\n"
        mirror = ctx.arg("apt_mirror")
        if mirror:
            components = quote(str(ctx.arg("apt_mirror_components", "main")))
            script += (f". /etc/os-release\nprintf 'deb %s %s %s\\n' {quote(str(mirror))} \"$VERSION_CODENAME\" "
                       f"{components} > {MIRROR_LIST}\n")
        packages = state.data["missing"] if state and state.data.get("missing") else self.packages(ctx)
        return script + ("apt-get update -q\n"
                         f"apt-get install -y -q --no-install-recommends {words(packages)}\n")
