"""Fixtures for the deploy tests: a Kubernetes API stand-in on loopback and a Cluster on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.deploy.cluster import Cluster
from tests.deploy.kube import Kube, start


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    """An empty API server with the `flashhead` namespace."""
    for server in start(tmp_path):
        server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flashhead"}})
        yield server


@pytest.fixture
def cluster(kube: Kube) -> Cluster:
    """The real kubernetes client, configured from a kubeconfig file pointing at the stand-in."""
    return Cluster.connect(str(kube.kubeconfig), namespace="flashhead")
