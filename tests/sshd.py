"""A real OpenSSH sshd for tests: own host key, an authorized test key, a loopback port.

Also a test host in its own network namespace (ip netns + veth), to prove nothing assumes
loopback. Both are started by pytest fixtures (tests/conftest.py) and torn down after.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
TEST_USER = "flashhead-test"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, comment: str = "flashhead-test") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def ensure_test_user(name: str = TEST_USER) -> str:
    """A non-root login user with passwordless sudo (as a provisioning target would have)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    subprocess.run(["usermod", "-p", "*", name], check=True)  # no password, but not "locked"
    sudoers = Path(f"/etc/sudoers.d/{name}")
    sudoers.write_text(f"{name} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    return name


@dataclass
class SSHServer:
    """A running sshd and the client-side files to reach it."""

    address: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    ssh_config: Path
    host_key: Path
    log_path: Path
    process: subprocess.Popen
    sftp_log: Path | None = None

    def inventory_host(self, **extra: object) -> dict:
        return {"address": self.address, "port": self.port, "user": self.user,
                "identity_file": str(self.client_key), **extra}

    def env(self) -> dict[str, str]:
        """Environment for the CLI so it uses this server's known_hosts and no user ssh config."""
        return {"FLASHHEAD_KNOWN_HOSTS": str(self.known_hosts), "FLASHHEAD_SSH_CONFIG": str(self.ssh_config),
                "SSH_AUTH_SOCK": ""}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sshd(workdir: Path, *, address: str = "127.0.0.1", user: str | None = None,
               netns: str | None = None, setenv: dict[str, str] | None = None,
               log_sftp: bool = False) -> SSHServer:
    """Start sshd. `log_sftp`: run OpenSSH's sftp-server, logging every request (open flags and
    mode) to `SSHServer.sftp_log`, instead of the built-in internal-sftp."""
    workdir.mkdir(parents=True, exist_ok=True)
    user = user or ensure_test_user()
    host_key = keygen(workdir / "ssh_host_ed25519_key", "test-host")
    client_key = keygen(workdir / "id_ed25519_client", "flashhead-test-client")
    # The login user reads this file itself, and pytest's temp dirs are private to root.
    public_dir = Path(tempfile.mkdtemp(prefix="flashhead-sshd-"))
    public_dir.chmod(0o755)
    authorized = public_dir / "authorized_keys"
    authorized.write_text((workdir / "id_ed25519_client.pub").read_text())
    authorized.chmod(0o644)
    port = 22 if netns else free_port(address)
    sftp, sftp_log = "internal-sftp", None
    if log_sftp:
        sftp_log = public_dir / "sftp.log"
        sftp_log.touch(mode=0o666)
        sftp_log.chmod(0o666)
        wrapper = public_dir / "sftp-server-logged"
        wrapper.write_text(f"#!/bin/sh\nexec /usr/lib/openssh/sftp-server -e -l INFO 2>>{sftp_log}\n")
        wrapper.chmod(0o755)
        sftp = str(wrapper)
    config = workdir / "sshd_config"
    config.write_text(f"""
Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {workdir}/sshd.pid
AuthorizedKeysFile {authorized}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers {user} root
Subsystem sftp {sftp}
LogLevel DEBUG1
""" + "".join(f"SetEnv {key}={value}\n" for key, value in (setenv or {}).items()))
    Path("/run/sshd").mkdir(exist_ok=True)
    log_path = workdir / "sshd.log"
    command = [SSHD, "-D", "-e", "-f", str(config)]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    _wait_listening(address, port, process, log_path)
    known_hosts = workdir / "known_hosts"
    public = (workdir / "ssh_host_ed25519_key.pub").read_text().split()
    name = address if port == 22 else f"[{address}]:{port}"
    known_hosts.write_text(f"{name} {public[0]} {public[1]}\n")
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text("")
    return SSHServer(address, port, user, client_key, known_hosts, ssh_config, host_key, log_path, process, sftp_log)


def _wait_listening(address: str, port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log_path.read_text()}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {address}:{port}: {log_path.read_text()}")


@dataclass
class NetnsHost:
    name: str
    address: str  # the namespace side of the veth pair


def create_netns_host(name: str, host_ip: str, ns_ip: str) -> NetnsHost:
    """A network namespace joined to this machine by a veth pair (host_ip <-> ns_ip, /30)."""
    delete_netns_host(name)
    veth_host, veth_ns = f"{name}-h"[:15], f"{name}-n"[:15]
    for args in (["netns", "add", name],
                 ["link", "add", veth_host, "type", "veth", "peer", "name", veth_ns],
                 ["link", "set", veth_ns, "netns", name],
                 ["addr", "add", f"{host_ip}/30", "dev", veth_host],
                 ["link", "set", veth_host, "up"]):
        subprocess.run(["ip", *args], check=True)
    for args in (["addr", "add", f"{ns_ip}/30", "dev", veth_ns], ["link", "set", veth_ns, "up"],
                 ["link", "set", "lo", "up"]):
        subprocess.run(["ip", "netns", "exec", name, "ip", *args], check=True)
    return NetnsHost(name, ns_ip)


def delete_netns_host(name: str) -> None:
    subprocess.run(["ip", "link", "del", f"{name}-h"[:15]], capture_output=True)
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def is_root() -> bool:
    return os.geteuid() == 0
