"""Values with spaces, quotes, `$()`, `;` and newlines arrive verbatim and never execute."""

from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.connectors.base import env_script, quote, to_shell
from ops.connectors.local import LocalConnector
from ops.connectors.ssh import SSHConnector
from ops.facts import disk
from ops.inventory import Host
from tests.sshd import SSHServer

NASTY = [
    "plain", "with space", "it's", 'say "hi"', "$(touch {canary})", "`touch {canary}`", "; touch {canary}",
    "a && touch {canary}", "| touch {canary}", "$HOME", "${{IFS}}", "*", "~root", "new\nline; touch {canary}",
    "back\\slash", "-n", "--help", "tab\there", "ünïcødé ✓", "'; touch {canary}; '", '"; touch {canary}; "',
]
# Text the remote shell must not interpret; NUL cannot travel in argv at all.
shell_text = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)


def local() -> LocalConnector:
    return LocalConnector(Host(name="@local", connector="local"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=shell_text)
def test_argv_words_arrive_verbatim(value: str, tmp_path: Path) -> None:
    canary = tmp_path / f"canary-{uuid.uuid4().hex}"
    value = value.replace("{canary}", str(canary))
    result = local().run(["printf", "%s", value])
    assert result.stdout == value
    assert not canary.exists()


@settings(max_examples=100, deadline=None)
@given(value=shell_text)
def test_env_values_arrive_verbatim(value: str) -> None:
    result = local().run('printf %s "$FLASHHEAD_TEST_VALUE"', env={"FLASHHEAD_TEST_VALUE": value})
    assert result.stdout == value


@settings(max_examples=100, deadline=None)
@given(root=shell_text.filter(lambda text: "\n" not in text))
def test_model_root_from_inventory_is_quoted_in_probes(root: str) -> None:
    command = disk.command({"model_root": "/" + root})
    assert quote("/" + root) in command


def test_nasty_values_over_real_ssh(ssh_env: SSHServer, tmp_path: Path) -> None:
    host = Host(name="t", address=ssh_env.address, port=ssh_env.port, user=ssh_env.user,
                identity_file=str(ssh_env.client_key))
    canary = f"/tmp/flashhead-canary-{uuid.uuid4().hex}"
    with SSHConnector(host) as conn:
        for template in NASTY:
            value = template.format(canary=canary)
            assert conn.run(["printf", "%s", value]).stdout == value
            assert conn.sudo(["printf", "%s", value]).stdout == value
            assert conn.run('printf %s "$V"', env={"V": value}).stdout == value
            assert conn.sudo('printf %s "$V"', env={"V": value}).stdout == value
        assert not conn.exists(canary)


def test_to_shell_keeps_scripts_and_quotes_lists() -> None:
    assert to_shell("echo $HOME") == "echo $HOME"
    assert to_shell(["echo", "$HOME"]) == "echo '$HOME'"
    assert env_script({"A": "x'y"}) == "export A='x'\"'\"'y'\n"
