"""What a task sees while it runs: the connector, the vars, its args, the host state, the secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ops.connectors.base import DEFAULT_TIMEOUT, OutputSink, Result
from ops.errors import FlashheadError, RemoteCommandFailed
from ops.playbook.redact import Redactor

if TYPE_CHECKING:
    from ops.connectors.base import Connector
    from ops.playbook.hoststate import HostState


@dataclass
class Context:
    """One step's view of the run. `run()` redacts secrets from any failure it raises."""

    conn: Connector
    vars: dict[str, Any]
    hoststate: HostState
    secrets: dict[str, str] = field(default_factory=dict)  # env name -> value, sent by env only
    args: dict[str, Any] = field(default_factory=dict)
    step: str = ""
    source: str | None = None  # --source DIR: pre-staged checkpoints on the host
    facts: dict[str, Any] | None = None

    @property
    def redactor(self) -> Redactor:
        return Redactor(list(self.secrets.values()))

    def arg(self, name: str, default: Any = None) -> Any:
        """A step arg, else the var of the same name, else `default`."""
        return self.args.get(name, self.vars.get(name, default))

    def run(self, script: str, *, sudo: bool = False, env: Mapping[str, str] | None = None,
            stdin: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT, check: bool = True,
            on_output: OutputSink | None = None) -> Result:
        try:
            result = self.conn.run(script, sudo=sudo, env=env, stdin=stdin, timeout=timeout, check=check,
                                   on_output=on_output)
        except RemoteCommandFailed as exc:
            raise self.redact_error(exc) from None
        result.stdout, result.stderr = self.redactor.text(result.stdout), self.redactor.text(result.stderr)
        return result

    def redact_error(self, error: FlashheadError) -> FlashheadError:
        error.message = self.redactor.text(error.message)
        error.details = self.redactor.data(error.details)
        if isinstance(error, RemoteCommandFailed):
            error.output = self.redactor.text(error.output)
        return error
