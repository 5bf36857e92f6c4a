"""Settings replies and the proxy's configuration keys."""

from __future__ import annotations

import pytest
from rocketmq.grpc_protocol import definition_pb2 as pb

from orbitmq.core.errors import ConfigError
from orbitmq.proxy.config import PROXY_PROPERTY_NAMES, ProxyConfig, proxy_config_from_properties
from orbitmq.proxy.metadata import GroupSettings, accepted_types
from orbitmq.proxy.settings import merge_settings
from orbitmq.proxy.status import Code, ProxyError

CFG = ProxyConfig()


def test_producer_gets_exponential_backoff_and_a_body_limit() -> None:
    client = pb.Settings(
        client_type=pb.ClientType.PRODUCER, publishing=pb.Publishing(topics=[pb.Resource(name="T")])
    )
    reply = merge_settings(client, CFG, None)
    assert reply.publishing.topics[0].name == "T"  # the client's own settings are echoed
    assert reply.publishing.max_body_size == 4 * 1024 * 1024 and reply.publishing.validate_message_type
    backoff = reply.backoff_policy
    assert backoff.max_attempts == 3 and backoff.exponential_backoff.initial.nanos == 10_000_000
    assert backoff.exponential_backoff.max.seconds == 1 and backoff.exponential_backoff.multiplier == 2


def test_consumer_gets_polling_batch_fifo_and_the_groups_attempts() -> None:
    client = pb.Settings(
        client_type=pb.ClientType.PUSH_CONSUMER, subscription=pb.Subscription(group=pb.Resource(name="G"))
    )
    reply = merge_settings(client, CFG, GroupSettings(fifo=True, retry_max_times=2))
    sub = reply.subscription
    assert sub.long_polling_timeout.seconds == 20 and sub.receive_batch_size == 32 and sub.fifo
    assert reply.backoff_policy.max_attempts == 3
    assert [d.seconds for d in reply.backoff_policy.customized_backoff.next][:4] == [1, 5, 10, 30]


def test_settings_of_no_kind_are_a_bad_request() -> None:
    with pytest.raises(ProxyError) as err:
        merge_settings(pb.Settings(), CFG, None)
    assert err.value.code == Code.BAD_REQUEST


def test_topic_types_from_the_message_type_attribute() -> None:
    assert accepted_types(None) == (1, 2, 3, 4)  # auto-created topics accept everything
    assert accepted_types("FIFO") == (2,)
    assert accepted_types("MIXED") == (1, 2, 3, 4)


def test_config_keys_are_rocketmq_names_with_checked_values() -> None:
    cfg = proxy_config_from_properties(
        {
            "grpcClientConsumerMinLongPollingTimeoutMillis": "1000",
            "enableProxyAutoRenew": "false",
            "grpcClientConsumerPopWithNotifyThreshold": "2.5",
        }
    )
    assert (
        cfg.grpc_client_consumer_min_long_polling_timeout_millis == 1000 and not cfg.enable_proxy_auto_renew
    )
    assert cfg.grpc_client_consumer_pop_with_notify_threshold == 2.5
    assert set(PROXY_PROPERTY_NAMES.values()) <= set(ProxyConfig.__dataclass_fields__)
    with pytest.raises(ConfigError, match="grpcClientConsumerMinLongPolling"):
        proxy_config_from_properties({"grpcClientConsumerMinLongPollingTimeoutMillis": "30000"})
    with pytest.raises(ConfigError, match="nosuchKey"):
        proxy_config_from_properties({"nosuchKey": "1"})
    with pytest.raises(ConfigError, match="enableProxyAutoRenew"):
        proxy_config_from_properties({"enableProxyAutoRenew": "maybe"})
