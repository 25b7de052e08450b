"""The local connector: same interface, subprocess underneath."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.connectors.local import LocalConnector
from ops.errors import CommandTimeout, RemoteCommandFailed
from ops.inventory import Host


@pytest.fixture
def conn() -> LocalConnector:
    return LocalConnector(Host(name="@local", connector="local"))


def test_run_and_failure(conn: LocalConnector) -> None:
    assert conn.run(["echo", "a b"]).stdout == "a b\n"
    with pytest.raises(RemoteCommandFailed) as failed:
        conn.run("echo oops >&2; exit 4")
    assert failed.value.exit_status == 4 and "oops" in failed.value.output


def test_timeout(conn: LocalConnector) -> None:
    with pytest.raises(CommandTimeout):
        conn.run("sleep 5", timeout=0.5)


def test_put_is_atomic_and_sets_mode(conn: LocalConnector, tmp_path: Path) -> None:
    source = tmp_path / "a"
    source.write_text("payload")
    target = tmp_path / "deep" / "dir" / "b"
    conn.put(source, str(target), mode=0o640)
    assert target.read_text() == "payload"
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in target.parent.iterdir()] == ["b"]
    back = tmp_path / "c"
    conn.get(str(target), back)
    assert back.read_text() == "payload"
    assert conn.exists(str(target)) and not conn.exists(str(tmp_path / "missing"))


def test_stdin_is_passed(conn: LocalConnector) -> None:
    assert conn.run("cat", stdin="from stdin").stdout == "from stdin"


def test_sudo_put_stages_through_a_private_temp_file(tmp_path: Path) -> None:
    """As a non-root user, put(sudo=True) stages the file with mkstemp (0600, O_EXCL) and removes it."""
    import tempfile

    source = tmp_path / "a"
    source.write_text("payload")
    target = tmp_path / "root-owned" / "b"
    local = LocalConnector(Host(name="@local", connector="local"))
    local._is_root = False  # take the sudo path even though the tests run as root
    before = set(Path(tempfile.gettempdir()).glob(".flashhead-put-*"))
    local.put(source, str(target), mode=0o640, sudo=True)
    assert target.read_text() == "payload" and oct(target.stat().st_mode & 0o777) == "0o640"
    assert set(Path(tempfile.gettempdir()).glob(".flashhead-put-*")) == before
