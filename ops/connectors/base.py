"""The connector interface: run / sudo / put / get / exists, with env that never touches argv."""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import RemoteCommandFailed, SessionLost
from ops.inventory import Host

Command = str | Sequence[str]
DEFAULT_TIMEOUT = 600.0
# Called with ("stdout" | "stderr", bytes) as a command's output arrives, before it ends.
OutputSink = Callable[[str, bytes], None]


def quote(value: str | Path) -> str:
    """Shell-quote one word for the remote shell."""
    return shlex.quote(str(value))


def to_shell(command: Command) -> str:
    """A list is an argv (every word quoted); a string is already a shell script."""
    return command if isinstance(command, str) else shlex.join(str(word) for word in command)


def env_script(env: Mapping[str, str]) -> str:
    """`export` lines for env values, read by the remote shell from a file or stdin, never argv."""
    lines = []
    for name, value in env.items():
        if not name.isidentifier():
            raise ValueError(f"not a valid environment variable name: {name!r}")
        lines.append(f"export {name}={quote(value)}")
    return "\n".join(lines) + "\n"


@dataclass
class Result:
    """What a command did on the host. `lost`: it ended without an exit status (killed by a signal,
    or its session cut); `run()` turns that into SessionLost, the same for every connector."""

    command: str
    exit_status: int
    stdout: str
    stderr: str
    lost: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


class Connector(ABC):
    """A way to run commands and move files on one host.

    The contract every implementation keeps: `open()` connects (and raises a typed error with a
    remedy when it cannot); `run()` returns the exit status and output, raises CommandTimeout past
    its timeout and SessionLost when the command ends without a status; env values never reach argv.
    """

    def __init__(self, host: Host):
        self.host = host
        self._is_root: bool | None = None
        self.on_progress: Callable[[dict[str, Any]], None] | None = None  # set by the CLI: what to show

    def open(self) -> None:  # noqa: B027 - connectors without a session have nothing to open
        """Connect to the host, or raise ConnectionFailed/ClusterError with the remedy."""

    def expect_run(self, seconds: float) -> None:  # noqa: B027 - only a connector with a lifetime cares
        """Say how long the coming work may take (the kubectl connector sizes its pod's deadline)."""

    def report(self, kind: str, message: str, **fields: Any) -> None:
        """Tell the operator what the connector is doing or waiting for (a progress event)."""
        if self.on_progress is not None:
            self.on_progress({"event": "progress", "kind": kind, "host": self.host.target, "message": message,
                              **fields})

    @abstractmethod
    def _execute(self, script: str, *, env: Mapping[str, str] | None, stdin: str | bytes | None,
                 timeout: float, on_output: OutputSink | None = None) -> Result:
        """Run a shell script on the host (as the login user) and collect its output, handing each
        piece to `on_output` as it arrives; set `lost` on the result when the command ended without
        an exit status."""

    @abstractmethod
    def put(self, local_path: str | Path, remote_path: str, *, mode: int | None = None,
            sudo: bool = False) -> None:
        """Copy a local file to the host, atomically (temp file + rename)."""

    @abstractmethod
    def get(self, remote_path: str, local_path: str | Path) -> None:
        """Copy a file from the host."""

    def _stage_env(self, env: Mapping[str, str]) -> str | None:
        """Put env where only the command can read it; return the shell prelude that loads it.

        The prelude runs inside any `sudo` wrapper, so root commands see the values too.
        None means this connector hands env to `_execute` instead.
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional for connectors without a session
        """Release the connection."""

    def run(self, command: Command, *, env: Mapping[str, str] | None = None,
            stdin: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT, check: bool = True,
            sudo: bool = False, on_output: OutputSink | None = None) -> Result:
        """Run a command. A list is quoted word by word; env values never appear in argv.
        `on_output` sees the output while the command runs (progress of long work)."""
        script = to_shell(command)
        prelude = self._stage_env(env) if env else None
        if prelude is not None:
            script, env = prelude + script, None
        if sudo and not self.is_root:
            script = f"sudo -n -H -- bash -c {quote(script)}"
        result = self._execute(script, env=env, stdin=stdin, timeout=timeout, on_output=on_output)
        result.command = to_shell(command)
        if result.lost:
            raise SessionLost(result.command, result.output)
        if check and not result.ok:
            raise RemoteCommandFailed(result.command, result.exit_status, result.output)
        return result

    def sudo(self, command: Command, **options: object) -> Result:
        """Run a command as root (via `sudo -n`, never prompting)."""
        return self.run(command, sudo=True, **options)  # type: ignore[arg-type]

    def exists(self, path: str, *, sudo: bool = False) -> bool:
        return self.run(["test", "-e", path], check=False, sudo=sudo).ok

    @property
    def is_root(self) -> bool:
        if self._is_root is None:
            self._is_root = self.run(["id", "-u"]).stdout.strip() == "0"
        return self._is_root

    def __enter__(self) -> Connector:
        return self  # opened on first use (doctor opens explicitly, to tell connect from auth)

    def __exit__(self, *exc: object) -> None:
        self.close()
