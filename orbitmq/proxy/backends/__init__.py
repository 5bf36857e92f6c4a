"""Backends of the proxy: how a remoting request reaches a broker (``cluster``: over the network;
``local``: into an in-process broker). Import :mod:`orbitmq.proxy.backends.local` only where a broker runs
in the same process (it is the one proxy module that imports the broker)."""

from orbitmq.proxy.backends.base import Backend
from orbitmq.proxy.backends.cluster import ClusterBackend

__all__ = ["Backend", "ClusterBackend"]
