"""The gRPC proxy: ``apache.rocketmq.v2.MessagingService`` for the official RocketMQ 5 clients, over an
in-process broker (local mode) or a NameServer cluster (cluster mode). See docs/proxy.md."""

from orbitmq.proxy.app import ProxyApp
from orbitmq.proxy.backends.base import Backend
from orbitmq.proxy.backends.cluster import ClusterBackend
from orbitmq.proxy.config import PROXY_PROPERTY_NAMES, ProxyConfig, proxy_config_from_properties
from orbitmq.proxy.counters import ProxyCounters

__all__ = [
    "PROXY_PROPERTY_NAMES",
    "Backend",
    "ClusterBackend",
    "ProxyApp",
    "ProxyConfig",
    "ProxyCounters",
    "proxy_config_from_properties",
]
