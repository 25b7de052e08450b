"""Run on this machine with subprocess: for `@local` and for a play run on the host itself."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from ops.connectors.base import Connector, OutputSink, Result, env_script, quote
from ops.errors import CommandTimeout


class LocalConnector(Connector):
    def _execute(self, script: str, *, env: Mapping[str, str] | None, stdin: str | bytes | None,
                 timeout: float, on_output: OutputSink | None = None) -> Result:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        process = subprocess.Popen(["bash", "-c", script], env={**os.environ, **(env or {})},
                                   stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        captured: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        readers = [threading.Thread(target=_pump, args=(pipe, name, captured[name], on_output), daemon=True)
                   for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr))]
        for reader in readers:
            reader.start()
        if data is not None and process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):  # it did not read all of it: its status says how it went
                process.stdin.write(data)
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            for reader in readers:
                reader.join(5)
            output = (captured["stdout"] + captured["stderr"]).decode(errors="replace")
            raise CommandTimeout(script, -1, output, f"the command ran past {timeout:.0f} s") from None
        for reader in readers:
            reader.join()
        return Result(script, status, captured["stdout"].decode(errors="replace"),
                      captured["stderr"].decode(errors="replace"), lost=status < 0)  # < 0: killed by a signal

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


def _pump(pipe: IO[bytes] | None, name: str, into: bytearray, on_output: OutputSink | None) -> None:
    """Read a pipe until it closes, keeping everything and handing each piece on as it arrives."""
    assert pipe is not None
    with pipe:
        while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
            into += chunk
            if on_output is not None:
                on_output(name, chunk)
