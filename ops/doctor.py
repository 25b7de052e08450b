"""Diagnose access to a host, one check at a time, each with a remedy when it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ops.errors import AuthenticationFailed, ClusterError, ConnectionFailed, ExitCode, HostKeyError

if TYPE_CHECKING:
    from ops.connectors.base import Connector


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not run, because an earlier check failed
    detail: str = ""
    remedy: str | None = None


@dataclass
class Diagnosis:
    host: str
    target: str
    checks: list[Check] = field(default_factory=list)
    exit_code: int = 0
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok is not False for check in self.checks)

    def add(self, name: str, ok: bool | None, detail: str = "", remedy: str | None = None) -> bool:
        self.checks.append(Check(name, ok, detail, remedy))
        return bool(ok)


def diagnose(connector: Connector) -> Diagnosis:
    """Connect, authenticate, then check sudo, disk, GPU and driver. Stops at the first access failure."""
    host = connector.host
    report = Diagnosis(host.name, host.target)
    if not _check_access(connector, report):
        return report
    if host.connector != "local" or not connector.is_root:
        _check_sudo(connector, report)
    _check_host(connector, report)
    report.exit_code = int(ExitCode.OK if report.ok else ExitCode.CHECK_FAILED)
    return report


def _check_access(connector: Connector, report: Diagnosis) -> bool:
    if connector.host.connector == "local":
        return report.add("connect", True, "runs on this machine")
    try:
        connector.open()
        if connector.host.connector == "kubectl":
            connector.run("true")  # the pod runs; can the API server open an exec session into it?
    except HostKeyError as error:
        report.add("connect", True, "TCP and SSH handshake")
        report.add("host key", False, error.message, error.remedy)
        report.details.update(error.details)
    except AuthenticationFailed as error:
        if "identity_file" in error.details:  # refused before connecting: the key file is missing
            report.add("connect", None, "not tried without a key file")
        else:
            report.add("connect", True, "TCP and SSH handshake; host key known")
        report.add("authenticate", False, error.message, error.remedy)
        report.details.update(error.details)
    except ConnectionFailed as error:
        report.add("connect", False, error.message, error.remedy)
    except ClusterError as error:  # the kubectl connector: no pod, or no exec into it
        report.add("connect", False, error.message, error.remedy)
        report.details.update(error.details)
        report.exit_code = int(error.exit_code)
        return False
    else:
        if connector.host.connector == "kubectl":
            report.add("connect", True, f"a pod runs on node {connector.host.node or connector.host.name} "
                                        "and takes commands")
            return True
        report.add("connect", True, "TCP and SSH handshake; host key known")
        report.add("authenticate", True, f"as {getattr(connector, 'destination', report.target)}")
        return True
    report.exit_code = int(ExitCode.CONNECTION)
    return False


def _check_sudo(connector: Connector, report: Diagnosis) -> None:
    if connector.is_root:
        report.add("sudo", True, "logged in as root")
        return
    result = connector.run("sudo -n true", check=False, timeout=30)
    user = connector.run(["id", "-un"], check=False).stdout.strip() or "the login user"
    report.add("sudo without prompt", result.ok, result.output[:200] if not result.ok else "sudo -n works",
               f"allow it on the host: echo '{user} ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/flashhead "
               "&& sudo chmod 440 /etc/sudoers.d/flashhead")


def _check_host(connector: Connector, report: Diagnosis) -> None:
    """The host requirements of the play (ops/facts/requirements.py), as facts and preflight judge them."""
    from ops.facts import gather_facts
    from ops.playbook.load import play_vars

    facts = gather_facts(connector, play_vars(connector.host.vars))
    report.details["facts"] = facts
    for verdict in facts["verdicts"]["requirements"]:
        if verdict["blocks"]:
            report.add(verdict["name"], verdict["ok"], verdict["detail"], verdict["remedy"])
