"""Every numeric option of every verb takes a finite number in its range; anything else is exit 2
naming the option (never an OverflowError, a hang on `inf`, or a variable the user did not set)."""

from __future__ import annotations

import importlib
import socket
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from ops.cli.common import App, Bounded
from ops.cli.main import VERBS, cli
from tests.conftest import run_cli

BAD = ["-1", "99999999999999999999", "1e400", "nan", "inf", "-inf", "abc", ""]
REQUIRED = {"accept": ["--url", "http://127.0.0.1:9"]}


def numeric_options() -> Iterator[tuple[list[str], click.Option]]:
    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Option]]:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
            return
        for param in command.params:
            if isinstance(param, click.Option) and (
                    isinstance(param.type, (Bounded, click.types.IntParamType, click.types.FloatParamType))):
                yield path, param
    for verb, (target, _) in VERBS.items():
        module, attribute = target.split(":")
        yield from walk(getattr(importlib.import_module(module), attribute), [verb])


OPTIONS = [(path, option.opts[0]) for path, option in numeric_options()]


def test_every_numeric_option_is_bounded() -> None:
    assert OPTIONS, "no numeric option found"
    loose = [f"{' '.join(path)} {option.opts[0]}" for path, option in numeric_options()
             if not isinstance(option.type, Bounded)]
    assert loose == []


@pytest.mark.parametrize("path, option", OPTIONS, ids=[f"{' '.join(p)} {o}" for p, o in OPTIONS])
@pytest.mark.parametrize("value", BAD)
def test_a_bad_number_is_a_usage_error_naming_the_option(path: list[str], option: str, value: str) -> None:
    done = CliRunner().invoke(cli, [*path, *REQUIRED.get(path[0], []), f"{option}={value}"], obj=App())
    assert done.exit_code == 2, done.output
    assert option in done.output and "Traceback" not in done.output


def test_demo_and_serve_ports_out_of_range_name_the_flag() -> None:
    for verb in (["demo"], ["serve", "--check"]):
        done = run_cli(*verb, "--port", "99999")
        assert done.returncode == 2 and "--port" in done.stderr and "FLASHHEAD_PORT" not in done.stderr


def test_a_serve_setting_given_as_a_flag_is_named_as_the_flag() -> None:
    from ops.cli.serve import _config
    from ops.errors import UsageError

    with pytest.raises(UsageError, match=r"^--max-queued-chunks must be at least 1$"):
        _config({"max_queued_chunks": 0, "port": None})
    done = run_cli("serve", "--check", "--host", "0.0.0.0", env={"FLASHHEAD_API_TOKEN": "short"})
    assert done.returncode == 2 and "FLASHHEAD_API_TOKEN" in done.stderr  # set by env: named as the variable


def test_serve_on_a_busy_port_is_a_usage_error_before_serving() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli("serve", "--port", str(port), timeout=30)
        by_env = run_cli("serve", env={"FLASHHEAD_PORT": str(port)}, timeout=30)
    assert done.returncode == 2, done.stderr
    assert f"--port {port}: the port is in use on 127.0.0.1" in done.stderr and "serving" not in done.stderr
    assert by_env.returncode == 2 and f"FLASHHEAD_PORT {port}: the port is in use" in by_env.stderr
