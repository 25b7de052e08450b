"""Run on this machine with subprocess: for `@local` and for a play run on the host itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ops.connectors.base import Connector, Result, env_script, quote
from ops.errors import CommandTimeout


class LocalConnector(Connector):
    def _execute(self, script: str, *, env: Mapping[str, str] | None, stdin: str | bytes | None,
                 timeout: float) -> Result:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        try:
            done = subprocess.run(["bash", "-c", script], input=data, capture_output=True, timeout=timeout,
                                  env={**os.environ, **(env or {})},
                                  stdin=subprocess.DEVNULL if data is None else None)
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
            raise CommandTimeout(script, -1, output, f"the command ran past {timeout:.0f} s") from exc
        return Result(script, done.returncode, done.stdout.decode(errors="replace"),
                      done.stderr.decode(errors="replace"), lost=done.returncode < 0)  # < 0: killed by a signal

    def _stage_env(self, env: Mapping[str, str]) -> str:
        fd, path = tempfile.mkstemp(prefix=".flashhead-env-")  # created 0600
        with os.fdopen(fd, "w") as handle:
            handle.write(env_script(env))
        return f". {quote(path)}; rm -f {quote(path)}; "

    def put(self, local_path: str | Path, remote_path: str, *, mode: int | None = None,
            sudo: bool = False) -> None:
        if sudo and not self.is_root:
            fd, staged = tempfile.mkstemp(prefix=".flashhead-put-")  # created 0600, O_EXCL
            try:
                with os.fdopen(fd, "wb") as handle, open(local_path, "rb") as source:
                    shutil.copyfileobj(source, handle)
                self.sudo(["install", "-D", "-m", oct(mode or 0o644)[2:], staged, remote_path])
            finally:
                os.unlink(staged)
            return
        target = Path(remote_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        os.close(fd)
        shutil.copyfile(local_path, temp)
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)

    def get(self, remote_path: str, local_path: str | Path) -> None:
        shutil.copyfile(remote_path, local_path)
