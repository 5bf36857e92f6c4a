"""The Telemetry settings exchange (grpc-protocol.md §5.3): the reply is the client's own settings echoed
back, completed the way the Java proxy completes them. Pure functions over protobuf values.

What the clients need from it (§0.1 items 1-3): producers a positive ``publishing.max_body_size`` and an
*exponential* ``backoff_policy`` (Node crashes without one); consumers ``subscription.long_polling_timeout``
(whole seconds), ``receive_batch_size`` and ``fifo``, and a backoff policy whose ``max_attempts`` is the
group's retryMaxTimes + 1 with the Java default customized delays.
"""

from __future__ import annotations

from typing import Any

from rocketmq.grpc_protocol import definition_pb2 as pb

from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.convert import ms_duration
from orbitmq.proxy.metadata import GroupSettings
from orbitmq.proxy.status import Code, ProxyError

__all__ = [
    "CONSUMER_TYPES",
    "CUSTOMIZED_BACKOFF_MS",
    "ClientType",
    "consumer_settings",
    "merge_settings",
    "producer_settings",
]

ClientType: Any = pb.ClientType
CONSUMER_TYPES = frozenset({ClientType.PUSH_CONSUMER, ClientType.SIMPLE_CONSUMER, ClientType.PULL_CONSUMER})

#: The Java proxy's default customized retry delays (``1s 5s 10s 30s 1m 2m 3m ... 30m 1h 2h``).
CUSTOMIZED_BACKOFF_MS: tuple[int, ...] = tuple(
    s * 1000 for s in (1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200)
)


def producer_settings(client: Any, config: ProxyConfig) -> Any:
    reply = pb.Settings()
    reply.CopyFrom(client)
    reply.backoff_policy.CopyFrom(
        pb.RetryPolicy(
            max_attempts=config.grpc_client_producer_max_attempts,
            exponential_backoff=pb.ExponentialBackoff(
                initial=ms_duration(config.grpc_client_producer_backoff_initial_millis),
                max=ms_duration(config.grpc_client_producer_backoff_max_millis),
                multiplier=float(config.grpc_client_producer_backoff_multiplier),
            ),
        )
    )
    reply.publishing.validate_message_type = config.enable_topic_message_type_check
    reply.publishing.max_body_size = config.max_message_size if config.max_message_size > 0 else 2**31 - 1
    reply.metric.CopyFrom(pb.Metric(on=False))
    return reply


def consumer_settings(client: Any, config: ProxyConfig, group: GroupSettings) -> Any:
    reply = pb.Settings()
    reply.CopyFrom(client)
    sub = reply.subscription
    sub.receive_batch_size = config.grpc_client_consumer_long_polling_batch_size
    sub.long_polling_timeout.CopyFrom(
        ms_duration(config.grpc_client_consumer_max_long_polling_timeout_millis)
    )
    sub.fifo = group.fifo
    reply.backoff_policy.CopyFrom(
        pb.RetryPolicy(
            max_attempts=group.max_attempts,
            customized_backoff=pb.CustomizedBackoff(next=[ms_duration(ms) for ms in CUSTOMIZED_BACKOFF_MS]),
        )
    )
    reply.metric.CopyFrom(pb.Metric(on=False))
    return reply


def merge_settings(client: Any, config: ProxyConfig, group: GroupSettings | None) -> Any:
    """The reply to a client's settings; ProxyError(BAD_REQUEST) for settings of no known kind."""
    which = client.WhichOneof("pub_sub")
    if which == "publishing" or client.client_type == ClientType.PRODUCER:
        return producer_settings(client, config)
    if which == "subscription" or client.client_type in CONSUMER_TYPES:
        return consumer_settings(client, config, group or GroupSettings())
    raise ProxyError(Code.BAD_REQUEST, "settings carry neither publishing nor subscription")
