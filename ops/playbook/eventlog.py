"""The run's JSON-lines event log on the host (`{state_dir}/events.jsonl`), appended in batches."""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from ops.connectors.base import quote

if TYPE_CHECKING:
    from ops.connectors.base import Connector
    from ops.playbook.redact import Redactor


class EventLog:
    """Buffers events (redacted) and appends them to the host's log on `flush()`."""

    def __init__(self, conn: Connector, state_dir: str, run_id: str, redactor: Redactor):
        self.conn = conn
        self.path = f"{state_dir}/events.jsonl"
        self.run_id = run_id
        self.redactor = redactor
        self.buffer: list[dict[str, Any]] = []
        self.enabled = False  # off until the state dir exists (never written in --check)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run_id": self.run_id,
                  "event": event, **self.redactor.data(fields)}
        self.buffer.append(record)
        return record

    def flush(self) -> None:
        if not self.enabled or not self.buffer:
            return
        self.conn.run(self.flush_script())

    def flush_script(self) -> str:
        """The command that appends the buffered events (a heredoc; JSON lines never hold the
        random delimiter), and forget them."""
        if not self.enabled or not self.buffer:
            return ""
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in self.buffer)
        self.buffer.clear()
        delimiter = f"FLASHHEAD_EVENTS_{secrets.token_hex(8)}"
        return f"(umask 077; cat >> {quote(self.path)}) <<'{delimiter}'\n{lines}{delimiter}\n"
