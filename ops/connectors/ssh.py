"""SSH via fabric/paramiko: honours ~/.ssh/config, strict host-key checking by default.

A host key not yet in known_hosts is refused (its fingerprint is shown) unless the caller opted in
with `accept_new_host_key=True` (OpenSSH's `StrictHostKeyChecking=accept-new`); a changed key is
always refused. Environment values travel in a 0600 file over SFTP, never in a command line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from ops.connectors.base import Connector, OutputSink, Result, env_script, quote
from ops.errors import AuthenticationFailed, CommandTimeout, ConnectionFailed, HostKeyError
from ops.inventory import Host
from ops.sshkeys import DEFAULT_KEY_NAMES, auth_remedy, fingerprint, offered_keys

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
CONNECT_TIMEOUT = 15.0
_KNOWN_HOSTS_WRITE = threading.Lock()  # hosts of a fleet run may accept new keys at the same time


class SSHConnector(Connector):
    def __init__(self, host: Host, *, accept_new_host_key: bool = False, known_hosts: str | None = None,
                 ssh_config: str | None = None, connect_timeout: float = CONNECT_TIMEOUT):
        super().__init__(host)
        self.accept_new_host_key = accept_new_host_key
        self.known_hosts = Path(os.path.expanduser(
            known_hosts or os.environ.get("FLASHHEAD_KNOWN_HOSTS") or DEFAULT_KNOWN_HOSTS))
        self.connect_timeout = connect_timeout
        self.connection = self._make_connection(ssh_config or os.environ.get("FLASHHEAD_SSH_CONFIG"))
        self._sftp: paramiko.SFTPClient | None = None
        self._opening = threading.RLock()  # a play's concurrent checks share one connection: one connects

    def _make_connection(self, ssh_config: str | None) -> Connection:
        config = Config(runtime_ssh_path=os.path.expanduser(ssh_config)) if ssh_config else Config()
        connect_kwargs: dict[str, Any] = {"banner_timeout": self.connect_timeout,
                                          "auth_timeout": self.connect_timeout}
        if self.host.identity_file:
            connect_kwargs["key_filename"] = [os.path.expanduser(self.host.identity_file)]
        connection = Connection(self.host.address or self.host.name, user=self.host.user, port=self.host.port,
                                config=config, connect_timeout=int(self.connect_timeout),
                                connect_kwargs=connect_kwargs)
        # ~/.ssh/config IdentityFile entries that do not exist are skipped, as OpenSSH skips them;
        # the identity_file named by the inventory or --identity-file is checked in open()
        named = connect_kwargs.get("key_filename", [])
        keys = connection.connect_kwargs.get("key_filename") or []
        keys = [keys] if isinstance(keys, str) else keys
        connection.connect_kwargs["key_filename"] = [
            key for key in keys if key in named or os.path.exists(os.path.expanduser(key))]
        client = connection.client
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_HostKeyPolicy(self))
        return connection

    @property
    def destination(self) -> str:
        connection = self.connection
        port = "" if connection.port == 22 else f":{connection.port}"
        return f"{connection.user}@{connection.host}{port}"

    def open(self) -> None:
        """Connect and authenticate, translating failures into errors with a remedy."""
        with self._opening:
            if not self.connection.is_connected:
                self._sftp = None  # a lost connection's SFTP session went with it
                self._connect()

    def _connect(self) -> None:
        connection = self.connection
        where = f"{connection.host}:{connection.port}"
        self._check_identity_file()
        try:
            connection.open()
        except socket.gaierror as exc:
            raise ConnectionFailed(f"cannot resolve host name {connection.host!r}: {exc.strerror}",
                                   "check the address in the inventory or ~/.ssh/config, and DNS") from exc
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            raise ConnectionFailed(f"connection refused by {where}: no SSH server listens there",
                                   "check the port, that sshd runs on the host, and firewalls") from exc
        except TimeoutError as exc:
            raise ConnectionFailed(
                f"timed out after {self.connect_timeout:.0f} s connecting to {where}",
                "the host is down or a firewall drops the packets; check the address and the network path",
            ) from exc
        except OSError as exc:
            raise ConnectionFailed(f"cannot connect to {where}: {exc.strerror or exc}",
                                   "check the address, the network route and firewalls") from exc
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"the host key of {where} CHANGED: expected {fingerprint(exc.expected_key)}, "
                f"got {fingerprint(exc.key)}. This can be a reinstalled host or an attack; refusing.",
                f"if the host was reinstalled, confirm the new fingerprint out of band, then remove the old key: "
                f"ssh-keygen -R {_known_hosts_name(connection.host, connection.port)} -f {self.known_hosts}",
                details={"known_hosts": str(self.known_hosts)},
            ) from exc
        except paramiko.AuthenticationException as exc:
            keys = offered_keys(self.connection)
            raise AuthenticationFailed(
                f"{self.destination} refused our credentials: Permission denied (publickey)",
                auth_remedy(self.host, self.destination, keys),
                details={"offered_keys": [key.describe() for key in keys]},
            ) from exc
        except paramiko.SSHException as exc:
            if "No authentication methods available" in str(exc):
                raise self._no_key() from exc
            raise ConnectionFailed(f"SSH handshake with {where} failed: {exc}",
                                   "check that the port speaks SSH and the server is healthy") from exc

    def _check_identity_file(self) -> None:
        """The key file the inventory or --identity-file names must exist and be readable."""
        if not self.host.identity_file:
            return
        path = os.path.expanduser(self.host.identity_file)
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return
        why = "does not exist" if not os.path.exists(path) else "is not a readable file"
        raise AuthenticationFailed(
            f"the SSH key file {path} {why} (identity_file of host {self.host.name}, or --identity-file)",
            f"fix the path in the inventory or --identity-file/-k; or create that key: ssh-keygen -t ed25519 -f "
            f"{path} -N '' and have its public half ({path}.pub) authorized on the host (`flashhead doctor` "
            "prints how once the key exists)",
            details={"identity_file": path})

    def _no_key(self) -> AuthenticationFailed:
        """No key to offer at all: say where we looked and how to make one."""
        agent = "ssh-agent (SSH_AUTH_SOCK is unset)" if not os.environ.get("SSH_AUTH_SOCK") else \
            "ssh-agent (it holds no key)"
        defaults = ", ".join(str(Path("~/.ssh", name)) for name in DEFAULT_KEY_NAMES)
        return AuthenticationFailed(
            f"no SSH key to offer {self.destination}: no identity_file is set, {agent}, and none of {defaults} exists",
            auth_remedy(self.host, self.destination, []),
            details={"looked_in": ["identity_file (inventory) / --identity-file: not set", agent,
                                   *[str(Path.home() / ".ssh" / name) for name in DEFAULT_KEY_NAMES]]})

    def _execute(self, script: str, *, env: Mapping[str, str] | None, stdin: str | bytes | None,
                 timeout: float, on_output: OutputSink | None = None) -> Result:
        assert not env, "env is staged in a file by Connector.run, never put on the command line"
        self.open()
        transport = self.connection.client.get_transport()
        assert transport is not None
        channel = open_session(transport)
        try:
            channel.exec_command(ends_after_our_eof(script))
            if stdin is not None:
                channel.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
            channel.shutdown_write()
            return _collect(channel, script, timeout, on_output)
        finally:
            channel.close()

    def _stage_env(self, env: Mapping[str, str]) -> str:
        path = f"/tmp/.flashhead-env-{secrets.token_hex(8)}"
        with _create_private(self.sftp, path) as handle:
            handle.write(env_script(env))
        return f". {path}; rm -f {path}; "

    @property
    def sftp(self) -> paramiko.SFTPClient:
        with self._opening:
            self.open()  # after a lost connection: connects again and drops the old SFTP session
            if self._sftp is None:
                self._sftp = self.connection.client.open_sftp()
            return self._sftp

    def put(self, local_path: str | Path, remote_path: str, *, mode: int | None = None,
            sudo: bool = False) -> None:
        staging = f"/tmp/.flashhead-put-{secrets.token_hex(8)}" if sudo and not self.is_root else \
            f"{remote_path}.partial-{secrets.token_hex(4)}"
        self.sftp.put(str(local_path), staging)
        final_mode = oct(mode if mode is not None else 0o644)[2:]
        if sudo and not self.is_root:
            self.sudo(f"install -D -m {final_mode} {quote(staging)} {quote(remote_path)} && rm -f {quote(staging)}")
        else:
            self.sftp.chmod(staging, int(final_mode, 8))
            self.sftp.posix_rename(staging, remote_path)

    def get(self, remote_path: str, local_path: str | Path) -> None:
        self.sftp.get(remote_path, str(local_path))

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        self.connection.close()


def _create_private(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPFile:
    """Create `path` for writing with mode 0600 in the open request itself (O_CREAT|O_EXCL): the file
    is never readable by others, not even between an open and a chmod, and an existing file or link
    there is refused. (SFTPClient.open sends no mode, so the request is made here.)"""
    from paramiko.sftp import CMD_HANDLE, CMD_OPEN, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL, SFTP_FLAG_WRITE

    attributes = paramiko.SFTPAttributes()
    attributes.st_mode = 0o600
    kind, message = sftp._request(CMD_OPEN, path, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL, attributes)
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("Expected handle")
    return paramiko.SFTPFile(sftp, message.get_binary(), "w")


def _collect(channel: paramiko.Channel, script: str, timeout: float, on_output: OutputSink | None) -> Result:
    stdout, stderr = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    channel.settimeout(0.2)
    while True:
        drained = _drain(channel, stdout, stderr, on_output)
        if channel.exit_status_ready() and not drained:
            _drain(channel, stdout, stderr, on_output)
            break
        if time.monotonic() > deadline:
            output = (stdout + stderr).decode(errors="replace")
            raise CommandTimeout(script, -1, output, f"the command ran past {timeout:.0f} s on the host")
    status = channel.recv_exit_status()
    # -1: sshd sent exit-signal (paramiko keeps no status) or closed the channel without one
    return Result(script, status, stdout.decode(errors="replace"), stderr.decode(errors="replace"), lost=status == -1)


def _drain(channel: paramiko.Channel, stdout: bytearray, stderr: bytearray, on_output: OutputSink | None) -> bool:
    def take(stream: str, data: bytes, into: bytearray) -> None:
        into += data
        if on_output is not None and data:
            on_output(stream, data)

    got = False
    while channel.recv_ready():
        take("stdout", channel.recv(65536), stdout)
        got = True
    while channel.recv_stderr_ready():
        take("stderr", channel.recv_stderr(65536), stderr)
        got = True
    if not got and not channel.exit_status_ready():
        with contextlib.suppress(socket.timeout, TimeoutError):
            data = channel.recv(65536)
            if data:
                take("stdout", data, stdout)
                got = True
    return got


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys unless the user opted in; then record them (accept-new)."""

    def __init__(self, connector: SSHConnector):
        self.connector = connector

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        known_hosts = self.connector.known_hosts
        if not self.connector.accept_new_host_key:
            raise HostKeyError(
                f"the host key of {hostname} is not known (not in {known_hosts}); refusing to connect. "
                f"Its fingerprint is {fingerprint(key)} ({key.get_name()}).",
                "compare that fingerprint with the host's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
                "on the host, or your provider's console); if it matches, re-run with --accept-new-host-key "
                "to trust it and record it in known_hosts",
                details={"fingerprint": fingerprint(key), "key_type": key.get_name(),
                         "known_hosts": str(known_hosts)},
            )
        with _KNOWN_HOSTS_WRITE:
            known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with known_hosts.open("a") as handle:
                handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def ends_after_our_eof(script: str) -> str:
    """The script in a subshell, then its stdin read to the end: the session ends only once our EOF
    has arrived. sshd drops the whole connection when an EOF comes for a channel it has already closed,
    and paramiko can send the EOF of `shutdown_write` after the CLOSE with which its own thread answers
    a command that ended at once (paramiko#1705); every check running on that connection was lost."""
    return f"(\n{script}\n)\nflashhead_status=$?\ncat >/dev/null\nexit $flashhead_status"  # zsh's $status is read-only


def open_session(transport: paramiko.Transport, attempts: int = 6) -> paramiko.Channel:
    """A new session channel, waiting briefly when sshd refuses one for its session limit.

    sshd allows MaxSessions (10 by default) sessions per connection and answers a channel open beyond
    them with "Connect failed". The playbook's concurrent checks can meet that limit while sessions
    they just closed are still being torn down on the server; a short wait lets them go.
    """
    for attempt in range(attempts):
        try:
            return transport.open_session()
        except paramiko.ChannelException as error:
            if error.code != paramiko.common.OPEN_FAILED_CONNECT_FAILED or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2 ** attempt)
    raise AssertionError("unreachable")
