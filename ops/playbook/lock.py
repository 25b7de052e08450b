"""The host lock (`{state_dir}/lock`): one run at a time, and the refusal names the holder."""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from typing import TYPE_CHECKING

from ops.connectors.base import quote
from ops.errors import HostLocked, UsageError

if TYPE_CHECKING:
    from ops.connectors.base import Connector

LOCKED_STATUS = 75  # what the lock script exits with when another run holds the lock
NO_STATE_DIR = 76  # ... when the state dir does not exist (preflight has not prepared the host)


def holder_record(run_id: str, command: str = "flashhead provision") -> dict:
    """Who takes the lock: user, machine, process, when and for what."""
    return {"run_id": run_id, "user": getpass.getuser(), "machine": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command}


def acquire(conn: Connector, state_dir: str, holder: dict, *, break_lock: bool = False) -> tuple[str, str | None]:
    """Create the lock file atomically (noclobber); refuse with the holder's name if it exists.

    A lock left by a run from this machine whose process is gone is stale: it is taken over, and
    the second value says whose it was. Returns (lock path, note about a taken-over lock or None).
    """
    path = f"{state_dir}/lock"
    if break_lock:
        conn.run(["rm", "-f", path])
    try:
        return _acquire(conn, state_dir, path, holder), None
    except HostLocked as locked:
        stale = _stale_holder(locked.details.get("holder", ""))
        if stale is None:
            raise
        conn.run(release_script(path, str(stale.get("run_id"))), check=False)
        return _acquire(conn, state_dir, path, holder), (
            f"took over a stale lock of run {stale.get('run_id')} (pid {stale.get('pid')} on this machine is gone)")


def _acquire(conn: Connector, state_dir: str, path: str, holder: dict) -> str:
    script = (f"[ -d {quote(state_dir)} ] || exit {NO_STATE_DIR}; "
              f"set -C; if ! {{ cat > {quote(path)}; }} 2>/dev/null; then cat {quote(path)}; "
              f"exit {LOCKED_STATUS}; fi")
    result = conn.run(script, stdin=json.dumps(holder) + "\n", check=False)
    if result.exit_status == NO_STATE_DIR:
        raise UsageError(f"{state_dir} does not exist: the host is not prepared",
                         "run the preflight step first (do not --skip preflight on a fresh host)")
    if result.exit_status == LOCKED_STATUS:
        raise HostLocked(*_refusal(path, result.stdout), details={"lock": path, "holder": result.stdout.strip()})
    if not result.ok:
        conn.run(script, stdin=json.dumps(holder) + "\n")  # raises with the command and its output
    return path


def release(conn: Connector, path: str, run_id: str) -> None:
    """Remove the lock only if this run still holds it."""
    conn.run(release_script(path, run_id), check=False)


def release_script(path: str, run_id: str) -> str:
    return f"grep -qF {quote(run_id)} {quote(path)} 2>/dev/null && rm -f {quote(path)}; true\n"


def _stale_holder(text: str) -> dict | None:
    """The holder, if it is a run on this machine whose process no longer exists."""
    try:
        holder = json.loads(text)
        pid = int(holder["pid"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if holder.get("machine") != socket.gethostname() or not holder.get("run_id"):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return holder
    except PermissionError:
        return None  # alive, another user's
    return None


def _refusal(path: str, text: str) -> tuple[str, str]:
    try:
        holder = json.loads(text)
        who = (f"{holder.get('user')}@{holder.get('machine')} (pid {holder.get('pid')}, "
               f"{holder.get('command')}, since {holder.get('started')}, run {holder.get('run_id')})")
    except (json.JSONDecodeError, AttributeError):
        who = text.strip() or "an unknown run"
    return (f"another run holds the host lock {path}: {who}",
            "wait for that run to finish; if it is no longer running (its machine/pid above), "
            "re-run with --break-lock")
