"""The host's state file (`{state_dir}/state.json`): what earlier runs recorded, read once per run.

It holds what a check cannot cheaply re-derive: resolved checkpoint commits and verified hashes,
the requirements installed, the fingerprint of the uploaded inference wheel, the last run's outcome.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ops.connectors.base import quote

if TYPE_CHECKING:
    from ops.connectors.base import Connector

SCHEMA = "flashhead.hoststate/v1"


class HostState:
    """state.json on the host: `steps.<name>` holds what that step recorded."""

    def __init__(self, conn: Connector, state_dir: str):
        self.conn = conn
        self.path = f"{state_dir}/state.json"
        self.data: dict[str, Any] = {"schema": SCHEMA, "steps": {}}
        self.dirty = False

    def load(self) -> HostState:
        result = self.conn.run(f"cat {quote(self.path)} 2>/dev/null || true", check=False)
        text = result.stdout.strip()
        if text:
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError:
                loaded = None  # a torn write from an older tool: start afresh, the checks re-derive
            if isinstance(loaded, dict) and loaded.get("schema") == SCHEMA:
                self.data = loaded
        self.data.setdefault("steps", {})
        return self

    def step(self, name: str) -> dict[str, Any]:
        return dict(self.data["steps"].get(name) or {})

    def record(self, name: str, values: dict[str, Any]) -> None:
        self.data["steps"][name] = values
        self.dirty = True

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.dirty = True

    def save(self) -> None:
        """Write atomically (temp file + rename), so an interrupted run never leaves half a file."""
        if not self.dirty:
            return
        script, text = self.save_script()
        self.conn.run(script, stdin=text)
        self.dirty = False

    def save_script(self) -> tuple[str, str]:
        """The command that writes the state (reading it from stdin) and the text to send."""
        path = quote(self.path)
        return (f"(umask 077; cat > {path}.tmp && mv -f {path}.tmp {path})\n",
                json.dumps(self.data, indent=1, sort_keys=True))
