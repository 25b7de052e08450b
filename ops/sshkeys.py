"""Which SSH keys were offered, their public lines, and the fix when a host refuses them."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

if TYPE_CHECKING:
    from fabric import Connection

    from ops.inventory import Host

DEFAULT_KEY_NAMES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")


@dataclass
class OfferedKey:
    source: str  # a file path, or "ssh-agent"
    public_line: str | None  # "ssh-ed25519 AAAA... comment", when it can be read
    fingerprint: str | None
    public_path: str | None = None

    def describe(self) -> dict:
        return {"source": self.source, "fingerprint": self.fingerprint, "public_key": self.public_line}


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint of a key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _fingerprint_of_public_line(line: str) -> str | None:
    parts = line.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1])
    except ValueError:
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def describe_key_file(path: str) -> OfferedKey:
    """Public line and fingerprint of a private key file (from its .pub, else from the key)."""
    public_path = path + ".pub"
    if os.path.exists(public_path):
        line = Path(public_path).read_text().strip().splitlines()[0]
        return OfferedKey(path, line, _fingerprint_of_public_line(line), public_path)
    try:
        key = paramiko.PKey.from_path(path)
    except (paramiko.SSHException, OSError, ValueError):
        return OfferedKey(path, None, None)
    return OfferedKey(path, f"{key.get_name()} {key.get_base64()}", fingerprint(key))


def offered_keys(connection: Connection) -> list[OfferedKey]:
    """The keys paramiko offers for this connection, in its order: files, agent, defaults."""
    kwargs = connection.connect_kwargs
    files = kwargs.get("key_filename") or []
    files = [files] if isinstance(files, str) else list(files)
    keys = [describe_key_file(os.path.expanduser(path)) for path in files if os.path.exists(os.path.expanduser(path))]
    if kwargs.get("allow_agent", True):
        try:
            for key in paramiko.Agent().get_keys():
                keys.append(OfferedKey("ssh-agent", f"{key.get_name()} {key.get_base64()}", fingerprint(key)))
        except paramiko.SSHException:
            pass
    if kwargs.get("look_for_keys", True):
        ssh_dir = Path.home() / ".ssh"
        for name in DEFAULT_KEY_NAMES:
            path = ssh_dir / name
            if path.exists() and str(path) not in files:
                keys.append(describe_key_file(str(path)))
    return keys


def auth_remedy(host: Host, destination: str, keys: list[OfferedKey]) -> str:
    """What to do when the host refuses every key: the line to authorize and who runs what."""
    user, _, rest = destination.partition("@")
    address, _, port = rest.partition(":")
    port_flag = f"-p {port} " if port else ""
    name = host.name
    lines = []
    if not keys:
        lines += ["No SSH key was offered: none is configured and none exists in ~/.ssh.",
                  "Create one:  ssh-keygen -t ed25519 -f ~/.ssh/id_ed25519 -N ''",
                  "(or name an existing one: --identity-file/-k PATH, or identity_file: in the inventory),",
                  f"then have its public half authorized for {user} on {address}:",
                  f"  ssh-copy-id -i ~/.ssh/id_ed25519.pub {port_flag}{user}@{address}",
                  "  (or ask whoever administers the host to append ~/.ssh/id_ed25519.pub to "
                  f"~{user}/.ssh/authorized_keys)"]
    else:
        lines.append("Keys offered (all refused):")
        lines += [f"  {key.source}  {key.fingerprint or '(fingerprint unreadable)'}" for key in keys]
        authorizable = next((key for key in keys if key.public_line), None)
        if authorizable:
            public = authorizable.public_line or ""
            pub_file = authorizable.public_path or "<public key file>"
            lines += [
                f"Ask whoever administers {address} to authorize this public key for user {user}:",
                f"  {public}",
                f"On the host, as {user} (or as root for {user}'s home):",
                f"  mkdir -p ~{user}/.ssh && chmod 700 ~{user}/.ssh && "
                f"echo '{public}' >> ~{user}/.ssh/authorized_keys && chmod 600 ~{user}/.ssh/authorized_keys",
                "Or, from a machine that can already log in with a password or another key:",
                f"  ssh-copy-id -i {pub_file} {port_flag}{user}@{address}",
            ]
    lines += [
        "Other ways in while you wait:",
        f"  flashhead provision {name} --connector kubectl   (a privileged pod on the node; needs cluster access)",
        f"  flashhead export-script {name} > provision.sh    (one bash script for someone on the host to run)",
        "  flashhead provision @local                       (run the play on the host itself)",
    ]
    return "\n".join(lines)
