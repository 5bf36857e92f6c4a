"""Transaction tests use the broker tests' in-process NameServer + Broker (real sockets, tmp store)."""

from tests.integration.broker.conftest import Cluster, cluster, make_cluster, until

__all__ = ["Cluster", "cluster", "make_cluster", "until"]
