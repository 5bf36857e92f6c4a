"""The broker tests' in-process cluster (a NameServer and a Broker on port 0, tmp store) for offset tests."""

from tests.integration.broker.conftest import Cluster, cluster, make_cluster

__all__ = ["Cluster", "cluster", "make_cluster"]
