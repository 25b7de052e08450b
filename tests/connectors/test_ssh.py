"""The SSH connector against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import glob
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from ops.connectors.ssh import SSHConnector
from ops.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    HostKeyError,
    RemoteCommandFailed,
    SessionLost,
)
from ops.inventory import Host
from tests.sshd import SSHServer, free_port, keygen


def make_host(server: SSHServer, **overrides: object) -> Host:
    fields = {"name": "test-host", "address": server.address, "port": server.port, "user": server.user,
              "identity_file": str(server.client_key), **overrides}
    return Host(**fields)  # type: ignore[arg-type]


def test_run_returns_output_and_status(ssh_env: SSHServer) -> None:
    with SSHConnector(make_host(ssh_env)) as conn:
        result = conn.run(["echo", "hello world"])
        assert result.stdout == "hello world\n"
        assert conn.run("exit 3", check=False).exit_status == 3
        with pytest.raises(RemoteCommandFailed) as failed:
            conn.run("echo to-stderr >&2; exit 7")
        assert failed.value.exit_status == 7
        assert "to-stderr" in failed.value.details["output_tail"]


def test_sudo_runs_as_root_without_prompt(ssh_env: SSHServer) -> None:
    with SSHConnector(make_host(ssh_env)) as conn:
        assert conn.run(["id", "-u"]).stdout.strip() != "0"
        assert conn.sudo(["id", "-u"]).stdout.strip() == "0"
        assert not conn.is_root


def test_put_and_get_round_trip(ssh_env: SSHServer, tmp_path: Path) -> None:
    source = tmp_path / "payload.bin"
    source.write_bytes(os.urandom(300_000))
    remote_dir = f"/tmp/flashhead-put-test-{os.getpid()}"
    with SSHConnector(make_host(ssh_env)) as conn:
        conn.run(["mkdir", "-p", remote_dir])
        conn.put(source, f"{remote_dir}/payload.bin", mode=0o600)
        assert conn.exists(f"{remote_dir}/payload.bin")
        assert conn.run(["stat", "-c", "%a", f"{remote_dir}/payload.bin"]).stdout.strip() == "600"
        back = tmp_path / "back.bin"
        conn.get(f"{remote_dir}/payload.bin", back)
        assert back.read_bytes() == source.read_bytes()
        root_owned = f"/opt/flashhead-put-test-{os.getpid()}/payload.bin"
        conn.put(source, root_owned, sudo=True)
        assert conn.run(["stat", "-c", "%U", root_owned]).stdout.strip() == "root"
        conn.sudo(["rm", "-rf", remote_dir, os.path.dirname(root_owned)])
        assert not conn.exists(f"{remote_dir}/payload.bin")


def test_env_reaches_the_command_but_never_argv_or_logs(ssh_env: SSHServer) -> None:
    secret = "hf_SECRET_" + os.urandom(8).hex()
    seen_in_argv: list[str] = []
    stop = threading.Event()

    def watch_process_table() -> None:
        while not stop.is_set():
            for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
                try:
                    text = Path(cmdline).read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if secret in text:
                    seen_in_argv.append(text)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_process_table)
    watcher.start()
    try:
        with SSHConnector(make_host(ssh_env)) as conn:
            result = conn.run('sleep 0.5; echo "token=$HF_TOKEN"', env={"HF_TOKEN": secret})
            sudo_result = conn.sudo('echo "token=$HF_TOKEN"', env={"HF_TOKEN": secret})
            leftovers = conn.run("ls -a /tmp | grep -c flashhead-env || true").stdout.strip()
    finally:
        stop.set()
        watcher.join()
    assert result.stdout.strip() == f"token={secret}"
    assert sudo_result.stdout.strip() == f"token={secret}"
    assert seen_in_argv == []
    assert secret not in ssh_env.log()
    assert leftovers == "0"


def test_a_command_killed_by_a_signal_is_not_a_status(ssh_env: SSHServer) -> None:
    with SSHConnector(make_host(ssh_env)) as conn:
        with pytest.raises(SessionLost) as lost:
            conn.run("echo before; kill -KILL $$", check=False)  # sshd reports exit-signal, no exit-status
        assert "without an exit status" in lost.value.message and "journalctl" in (lost.value.remedy or "")
        assert "before" in lost.value.output
        assert conn.run(["echo", "still usable"]).stdout == "still usable\n"


def test_command_timeout(ssh_env: SSHServer) -> None:
    with SSHConnector(make_host(ssh_env)) as conn, pytest.raises(CommandTimeout) as timed_out:
        conn.run("echo started; sleep 10", timeout=1)
    assert "ran past 1 s" in (timed_out.value.remedy or "")


def test_unknown_host_key_is_refused_with_fingerprint(ssh_env: SSHServer) -> None:
    ssh_env.known_hosts.write_text("")
    with pytest.raises(HostKeyError) as refused, SSHConnector(make_host(ssh_env)) as conn:
        conn.run(["true"])
    assert "SHA256:" in refused.value.message
    assert "--accept-new-host-key" in (refused.value.remedy or "")
    assert ssh_env.known_hosts.read_text() == ""


def test_new_host_key_accepted_with_opt_in_and_recorded(ssh_env: SSHServer) -> None:
    ssh_env.known_hosts.unlink()
    with SSHConnector(make_host(ssh_env), accept_new_host_key=True) as conn:
        assert conn.run(["true"]).ok
    recorded = ssh_env.known_hosts.read_text()
    assert f"[{ssh_env.address}]:{ssh_env.port} ssh-ed25519" in recorded
    with SSHConnector(make_host(ssh_env)) as conn:  # now known: no opt-in needed
        assert conn.run(["true"]).ok


def test_changed_host_key_is_refused_even_with_opt_in(ssh_env: SSHServer, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host_key")
    kind, blob = Path(f"{other}.pub").read_text().split()[:2]
    ssh_env.known_hosts.write_text(f"[{ssh_env.address}]:{ssh_env.port} {kind} {blob}\n")
    with pytest.raises(HostKeyError) as refused, SSHConnector(make_host(ssh_env), accept_new_host_key=True) as conn:
        conn.run(["true"])
    assert "CHANGED" in refused.value.message
    assert "ssh-keygen -R" in (refused.value.remedy or "")


def test_unauthorized_key_names_the_key_and_the_fix(ssh_env: SSHServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "id_stranger", "stranger@laptop")
    with pytest.raises(AuthenticationFailed) as refused, \
            SSHConnector(make_host(ssh_env, identity_file=str(stranger))) as conn:
        conn.run(["true"])
    public_line = Path(f"{stranger}.pub").read_text().strip()
    remedy = refused.value.remedy or ""
    assert public_line in remedy
    assert f"ssh-copy-id -i {stranger}.pub -p {ssh_env.port} {ssh_env.user}@{ssh_env.address}" in remedy
    assert "authorized_keys" in remedy
    assert "--connector kubectl" in remedy and "export-script" in remedy


def test_refused_port_says_nothing_listens(ssh_env: SSHServer) -> None:
    host = make_host(ssh_env, port=free_port())
    with pytest.raises(ConnectionFailed) as failed, SSHConnector(host) as conn:
        conn.run(["true"])
    assert "connection refused" in failed.value.message


def test_silent_port_times_out_with_a_clear_message(ssh_env: SSHServer) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host = make_host(ssh_env, port=silent.getsockname()[1])
        with pytest.raises(ConnectionFailed) as failed, SSHConnector(host, connect_timeout=1) as conn:
            conn.run(["true"])
    assert "127.0.0.1" in failed.value.message


def test_unresolvable_name_says_dns(ssh_env: SSHServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # No name server may be asked from a test, so the resolver's answer is simulated.
    def no_such_name(*_args: object, **_kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(ConnectionFailed) as failed, SSHConnector(make_host(ssh_env, address="gpu-9.invalid")) as conn:
        conn.run(["true"])
    assert "cannot resolve host name 'gpu-9.invalid'" in failed.value.message
    assert "DNS" in (failed.value.remedy or "")


def test_the_env_file_is_created_0600_and_exclusive_in_one_request(tmp_path: Path) -> None:
    """OpenSSH's sftp-server logs each open's flags and mode: the file is born 0600, never chmodded."""
    from tests.sshd import start_sshd

    server = start_sshd(tmp_path / "sshd", log_sftp=True)
    try:
        known_hosts = server.known_hosts
        host = make_host(server)
        with SSHConnector(host, known_hosts=str(known_hosts), ssh_config=str(server.ssh_config)) as conn:
            assert conn.run('printf %s "$V"', env={"V": "secret value"}).stdout == "secret value"
        assert server.sftp_log is not None
        log = server.sftp_log.read_text()
    finally:
        server.stop()
    opens = [line for line in log.splitlines() if "flashhead-env-" in line and "open " in line]
    assert len(opens) == 1 and "flags WRITE,CREATE,EXCL mode 0600" in opens[0], log
    assert not any("set" in line and "flashhead-env-" in line for line in log.splitlines())  # no later chmod
