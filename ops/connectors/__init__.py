"""Ways to reach a host, behind one interface: ssh (fabric), local (subprocess), kubectl (pod)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ops.connectors.base import Connector
    from ops.inventory import Host


def connect(host: Host, **options: object) -> Connector:
    """Open the connector the host asks for. Options go to that connector's constructor."""
    if host.connector == "local":
        from ops.connectors.local import LocalConnector

        return LocalConnector(host)
    if host.connector == "kubectl":
        from ops.connectors.kubectl import KubectlConnector

        return KubectlConnector(host, **options)  # type: ignore[arg-type]
    from ops.connectors.ssh import SSHConnector

    return SSHConnector(host, **options)  # type: ignore[arg-type]
