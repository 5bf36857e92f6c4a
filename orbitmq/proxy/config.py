"""Proxy configuration: one frozen dataclass whose fields mirror RocketMQ's ``ProxyConfig`` properties.

Only :mod:`orbitmq.cli` reads files and flags; it turns ``key=value`` lines into a config with
:func:`proxy_config_from_properties`. An unknown key or a bad value is a :class:`ConfigError` naming it.
The one key without an upstream twin is ``grpcClientConsumerPopWithNotifyThreshold`` (the open-source
Java proxy has no pop-with-notify; see docs/proxy.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from orbitmq.core.errors import ConfigError

__all__ = ["PROXY_PROPERTY_NAMES", "ProxyConfig", "proxy_config_from_properties"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Every field names the RocketMQ ``ProxyConfig`` property it mirrors (defaults are upstream's)."""

    proxy_name: str = "orbitmq-proxy"  # proxyName: the broker name the local mode shows is the broker's own
    grpc_server_port: int = 8081  # grpcServerPort; 0 picks a free port
    namesrv_addr: tuple[str, ...] = ()  # namesrvAddr (cluster mode)
    grpc_shutdown_time_seconds: int = 30  # grpcShutdownTimeSeconds: grace for running calls on stop
    grpc_max_inbound_message_size: int = 130 * _MIB  # grpcMaxInboundMessageSize
    max_message_size: int = 4 * _MIB  # maxMessageSize: largest body (0 or less: no proxy limit)
    enable_message_body_empty_check: bool = True  # enableMessageBodyEmptyCheck
    max_user_property_size: int = 16 * 1024  # maxUserPropertySize: bytes of all user properties
    user_property_max_num: int = 128  # userPropertyMaxNum
    max_message_group_size: int = 64  # maxMessageGroupSize
    default_invisible_time_mills: int = 60_000  # defaultInvisibleTimeMills
    min_invisible_time_mills_for_recv: int = 10_000  # minInvisibleTimeMillsForRecv
    max_invisible_time_mills: int = 12 * 3600_000  # maxInvisibleTimeMills
    max_delay_time_mills: int = 24 * 3600_000  # maxDelayTimeMills: delivery timestamp at most this far ahead
    max_transaction_recovery_second: int = 3600  # maxTransactionRecoverySecond
    enable_topic_message_type_check: bool = True  # enableTopicMessageTypeCheck (settings: validate types)
    grpc_client_producer_max_attempts: int = 3  # grpcClientProducerMaxAttempts
    grpc_client_producer_backoff_initial_millis: int = 10  # grpcClientProducerBackoffInitialMillis
    grpc_client_producer_backoff_max_millis: int = 1000  # grpcClientProducerBackoffMaxMillis
    grpc_client_producer_backoff_multiplier: int = 2  # grpcClientProducerBackoffMultiplier
    grpc_client_consumer_min_long_polling_timeout_millis: int = 5000  # ...MinLongPollingTimeoutMillis
    grpc_client_consumer_max_long_polling_timeout_millis: int = 20_000  # ...MaxLongPollingTimeoutMillis
    grpc_client_consumer_long_polling_batch_size: int = 32  # grpcClientConsumerLongPollingBatchSize
    #: Receive requests per second, per broker of the topic, of one (group, topic) at or above which a long
    #: poll is a plain broker long-poll pop instead of pop-with-notify (0: always plain). OrbitMQ's own key;
    #: the default is 5x the rate from which `orbitmq bench longpoll` saw no false empty with plain polls.
    grpc_client_consumer_pop_with_notify_threshold: float = 10.0
    long_polling_reserve_time_in_millis: int = 100  # longPollingReserveTimeInMillis: margin before deadline
    invisible_time_millis_when_clear: int = 1000  # invisibleTimeMillisWhenClear: handles of a gone client
    enable_proxy_auto_renew: bool = True  # enableProxyAutoRenew
    max_renew_retry_times: int = 3  # maxRenewRetryTimes
    renew_ahead_time_millis: int = 10_000  # renewAheadTimeMillis
    renew_slice_time_millis: int = 60_000  # renewSliceTimeMillis: invisible time of auto-renew pops
    renew_max_time_millis: int = 3 * 3600_000  # renewMaxTimeMillis
    renew_schedule_period_millis: int = 5000  # renewSchedulePeriodMillis
    grpc_client_idle_time_mills: int = 120_000  # grpcClientIdleTimeMills: settings of silent clients dropped
    topic_route_service_cache_refresh_seconds: int = 20  # topicRouteServiceCacheRefreshSeconds
    subscription_group_config_cache_refresh_seconds: int = 20  # subscriptionGroupConfigCacheRefreshSeconds
    use_endpoint_port_from_request: bool = False  # useEndpointPortFromRequest

    def __post_init__(self) -> None:
        if not 0 <= self.grpc_server_port <= 65535:
            raise ConfigError(f"grpcServerPort={self.grpc_server_port} is not a TCP port")
        lo = self.grpc_client_consumer_min_long_polling_timeout_millis
        hi = self.grpc_client_consumer_max_long_polling_timeout_millis
        if not 0 <= lo <= hi:
            raise ConfigError(
                "grpcClientConsumerMinLongPollingTimeoutMillis must be >= 0 and <= "
                f"grpcClientConsumerMaxLongPollingTimeoutMillis (got {lo} and {hi})"
            )
        if not 1 <= self.grpc_client_consumer_long_polling_batch_size <= 32:
            raise ConfigError("grpcClientConsumerLongPollingBatchSize must be 1..32 (a pop takes at most 32)")
        if self.grpc_client_consumer_pop_with_notify_threshold < 0:
            raise ConfigError("grpcClientConsumerPopWithNotifyThreshold must be >= 0")


PROXY_PROPERTY_NAMES: Final[dict[str, str]] = {
    "proxyName": "proxy_name",
    "grpcServerPort": "grpc_server_port",
    "namesrvAddr": "namesrv_addr",
    "grpcShutdownTimeSeconds": "grpc_shutdown_time_seconds",
    "grpcMaxInboundMessageSize": "grpc_max_inbound_message_size",
    "maxMessageSize": "max_message_size",
    "enableMessageBodyEmptyCheck": "enable_message_body_empty_check",
    "maxUserPropertySize": "max_user_property_size",
    "userPropertyMaxNum": "user_property_max_num",
    "maxMessageGroupSize": "max_message_group_size",
    "defaultInvisibleTimeMills": "default_invisible_time_mills",
    "minInvisibleTimeMillsForRecv": "min_invisible_time_mills_for_recv",
    "maxInvisibleTimeMills": "max_invisible_time_mills",
    "maxDelayTimeMills": "max_delay_time_mills",
    "maxTransactionRecoverySecond": "max_transaction_recovery_second",
    "enableTopicMessageTypeCheck": "enable_topic_message_type_check",
    "grpcClientProducerMaxAttempts": "grpc_client_producer_max_attempts",
    "grpcClientProducerBackoffInitialMillis": "grpc_client_producer_backoff_initial_millis",
    "grpcClientProducerBackoffMaxMillis": "grpc_client_producer_backoff_max_millis",
    "grpcClientProducerBackoffMultiplier": "grpc_client_producer_backoff_multiplier",
    "grpcClientConsumerMinLongPollingTimeoutMillis": "grpc_client_consumer_min_long_polling_timeout_millis",
    "grpcClientConsumerMaxLongPollingTimeoutMillis": "grpc_client_consumer_max_long_polling_timeout_millis",
    "grpcClientConsumerLongPollingBatchSize": "grpc_client_consumer_long_polling_batch_size",
    "grpcClientConsumerPopWithNotifyThreshold": "grpc_client_consumer_pop_with_notify_threshold",
    "longPollingReserveTimeInMillis": "long_polling_reserve_time_in_millis",
    "invisibleTimeMillisWhenClear": "invisible_time_millis_when_clear",
    "enableProxyAutoRenew": "enable_proxy_auto_renew",
    "maxRenewRetryTimes": "max_renew_retry_times",
    "renewAheadTimeMillis": "renew_ahead_time_millis",
    "renewSliceTimeMillis": "renew_slice_time_millis",
    "renewMaxTimeMillis": "renew_max_time_millis",
    "renewSchedulePeriodMillis": "renew_schedule_period_millis",
    "grpcClientIdleTimeMills": "grpc_client_idle_time_mills",
    "topicRouteServiceCacheRefreshSeconds": "topic_route_service_cache_refresh_seconds",
    "subscriptionGroupConfigCacheRefreshSeconds": "subscription_group_config_cache_refresh_seconds",
    "useEndpointPortFromRequest": "use_endpoint_port_from_request",
}


def _convert(key: str, value: str, current: object) -> object:
    if isinstance(current, bool):
        if value.lower() not in ("true", "false"):
            raise ConfigError(f"{key}={value!r}: expected true or false")
        return value.lower() == "true"
    if isinstance(current, int | float):
        try:
            return type(current)(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r}: expected a number") from None
    if isinstance(current, tuple):
        return tuple(v for v in value.replace(",", ";").split(";") if v)
    return value


def proxy_config_from_properties(props: dict[str, str], base: ProxyConfig | None = None) -> ProxyConfig:
    """``base`` with the RocketMQ-named ``props`` applied; :class:`ConfigError` naming any bad key/value."""
    base = base if base is not None else ProxyConfig()
    changes: dict[str, object] = {}
    for key, value in props.items():
        name = PROXY_PROPERTY_NAMES.get(key)
        if name is None:
            raise ConfigError(f"unknown proxy property {key!r} (value {value!r})")
        changes[name] = _convert(key, value, getattr(base, name))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
