"""One error root for the operator's side; each error carries an exit code and a remedy.

Only the CLI entry point turns these into messages and exit codes (see ops/cli/main.py).
The exit codes are part of the public interface and documented in the README.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # a check, acceptance test or verification failed
    USAGE = 2  # bad arguments, bad inventory, bad input file
    CONNECTION = 3  # host unreachable, DNS, timeout, authentication, host key
    CHANGES_PENDING = 4  # `provision --check`: the host is not in the desired state
    REMOTE_COMMAND = 5  # a command on the host failed (a provisioning step)
    CLUSTER = 6  # Kubernetes API: no kubeconfig, unreachable, forbidden, not found
    ROLLOUT = 7  # a rollout did not become ready (with the reason)
    LOCKED = 8  # another run holds the host lock
    INTERNAL = 70  # a bug: the traceback is written to a file


class FlashheadError(Exception):
    """Base error. `message` says what happened, `remedy` what the user can do about it."""

    exit_code: ExitCode = ExitCode.CHECK_FAILED

    def __init__(self, message: str, remedy: str | None = None, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.details = details or {}

    def to_dict(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "remedy": self.remedy,
            "exit_code": int(self.exit_code),
            "details": self.details,
        }


class UsageError(FlashheadError):
    exit_code = ExitCode.USAGE


class InventoryError(UsageError):
    """The inventory file is missing, unreadable or invalid."""


class OutputPathError(UsageError):
    """An output option names something that is not a regular file (a device, FIFO, folder, symlink)."""


class ConnectionFailed(FlashheadError):
    """The host could not be reached (DNS, refused, timeout)."""

    exit_code = ExitCode.CONNECTION


class AuthenticationFailed(ConnectionFailed):
    """The host refused our credentials."""


class HostKeyError(ConnectionFailed):
    """The host key is unknown (not yet trusted) or changed."""


class RemoteCommandFailed(FlashheadError):
    """A command on the host exited non-zero."""

    exit_code = ExitCode.REMOTE_COMMAND

    def __init__(self, command: str, exit_status: int, output: str, remedy: str | None = None):
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(
            f"command failed with exit status {exit_status}: {command}",
            remedy,
            details={"command": command, "exit_status": exit_status, "output_tail": tail},
        )
        self.command = command
        self.exit_status = exit_status
        self.output = output


class CommandTimeout(RemoteCommandFailed):
    """A command on the host ran past its timeout."""


class SessionLost(RemoteCommandFailed):
    """A command ended with no exit status: it died of a signal, or its SSH session was cut."""

    def __init__(self, command: str, output: str):
        super().__init__(command, -1, output, "re-run: every step is safe to repeat. If it happens again, look for "
                                              "a killed process in the host's kernel log (`journalctl -k`: the OOM "
                                              "killer?) and for the session in sshd's log")
        self.message = f"the command ended without an exit status (killed by a signal, or the session cut): {command}"
        self.args = (self.message,)


class CheckFailed(FlashheadError):
    exit_code = ExitCode.CHECK_FAILED


class ChangesPending(FlashheadError):
    exit_code = ExitCode.CHANGES_PENDING


class ClusterError(FlashheadError):
    exit_code = ExitCode.CLUSTER


class RolloutFailed(FlashheadError):
    exit_code = ExitCode.ROLLOUT


class HostLocked(FlashheadError):
    exit_code = ExitCode.LOCKED
