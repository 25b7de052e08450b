"""The shape of a task: a bash check (exit 0 done, 1 pending, 2+ blocked), a parse, a bash apply.

Both the runner and `export-script` use the same scripts, so the exported script checks exactly
what `flashhead provision` checks. A task may do local work before its apply (build a wheel,
upload a helper) and record what it did in the host state after.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, ClassVar

from ops.connectors.base import quote

if TYPE_CHECKING:
    from ops.connectors.base import Result
    from ops.playbook.context import Context
    from ops.playbook.model import State

DONE, PENDING = 0, 1


class Task:
    """Base class: override `check_script`, `parse_check` and `apply_script` (and the hooks you need)."""

    sudo_apply: ClassVar[bool] = False  # apply runs as root (apt, CUDA); checks never do
    recheck: ClassVar[bool] = True  # after apply, check again and fail if still not done
    apply_timeout: ClassVar[float] = 3600.0

    def check_script(self, ctx: Context) -> str:
        raise NotImplementedError

    def parse_check(self, ctx: Context, result: Result) -> State:
        raise NotImplementedError

    def apply_script(self, ctx: Context, state: State | None) -> str:
        """The commands that bring the host to the desired state. `state` is None in export-script."""
        raise NotImplementedError

    def blocked(self, ctx: Context, result: Result) -> tuple[str, str | None]:
        """The message and remedy when the check exits 2 or more (the host cannot be provisioned)."""
        from ops.playbook.model import human_output

        return (f"{ctx.step}: the check failed (exit {result.exit_status}): {human_output(result.output)[-500:]}",
                None)

    def apply_env(self, ctx: Context) -> dict[str, str]:
        """Environment for the apply script (secrets travel here, never in the script)."""
        return {}

    def files(self, ctx: Context) -> dict[str, bytes]:
        """Files the apply needs on the host (remote path → content): uploaded by the runner,
        embedded in the exported script."""
        return {}

    def prepare(self, ctx: Context, state: State) -> None:
        """Local work before the apply (build a wheel…)."""

    def after_apply(self, ctx: Context, state: State, result: Result) -> None:
        """Record what the apply did in the host state."""


def embed_file(path: str, content: bytes, mode: str = "0644") -> str:
    """Bash that writes `content` to `path` (base64 in a heredoc, so any bytes survive)."""
    encoded = base64.encodebytes(content).decode()
    return (f"mkdir -p \"$(dirname {quote(path)})\"\n"
            f"base64 -d > {quote(path)}.tmp <<'FLASHHEAD_EOF'\n{encoded}FLASHHEAD_EOF\n"
            f"chmod {mode} {quote(path)}.tmp && mv -f {quote(path)}.tmp {quote(path)}\n")


def words(values: Any) -> str:
    """Quote a list of values as shell words."""
    return " ".join(quote(str(v)) for v in values)
