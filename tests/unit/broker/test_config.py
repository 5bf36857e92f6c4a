"""BrokerConfig: defaults, RocketMQ property names, errors that name the key."""

from __future__ import annotations

import dataclasses

import pytest

from orbitmq.broker.config import BROKER_PROPERTY_NAMES, BrokerConfig, broker_config_from_properties
from orbitmq.core.errors import ConfigError


def test_defaults_mirror_rocketmq() -> None:
    cfg = BrokerConfig()
    assert (cfg.broker_name, cfg.broker_cluster_name, cfg.broker_id) == ("broker-a", "DefaultCluster", 0)
    assert cfg.broker_addr == "127.0.0.1:10911"
    assert cfg.default_topic_queue_nums == 8
    assert cfg.channel_expired_timeout == 120_000
    assert cfg.flush_consumer_offset_interval == 5000
    assert cfg.broker_permission == 6
    assert cfg.enable_property_filter is False
    assert len(cfg.delay_levels_ms) == 18


def test_every_field_has_a_property_name() -> None:
    fields = {f.name for f in dataclasses.fields(BrokerConfig)}
    assert set(BROKER_PROPERTY_NAMES.values()) == fields
    assert len(set(BROKER_PROPERTY_NAMES.values())) == len(BROKER_PROPERTY_NAMES)


def test_properties_are_converted_by_field_type() -> None:
    cfg = broker_config_from_properties(
        {
            "brokerName": " broker-b ",
            "listenPort": "0",
            "autoCreateTopicEnable": "False",
            "namesrvAddr": "127.0.0.1:9876; 10.0.0.1:9876;",
            "messageDelayLevel": "1s 2s",
        },
        BrokerConfig(),
    )
    assert cfg.broker_name == "broker-b"
    assert cfg.listen_port == 0
    assert cfg.auto_create_topic_enable is False
    assert cfg.namesrv_addr == ("127.0.0.1:9876", "10.0.0.1:9876")
    assert cfg.delay_levels_ms == (1000, 2000)


def test_base_is_kept_for_unset_keys() -> None:
    base = BrokerConfig(broker_name="x")
    assert broker_config_from_properties({"brokerId": "1"}, base) == dataclasses.replace(base, broker_id=1)


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        ({"noSuchKey": "1"}, "noSuchKey"),
        ({"storePathRootDir": "/tmp"}, "storePathRootDir"),
        ({"listenPort": "ten"}, "listenPort"),
        ({"listenPort": "70000"}, "listenPort"),
        ({"autoCreateTopicEnable": "yes"}, "autoCreateTopicEnable"),
        ({"defaultTopicQueueNums": "0"}, "defaultTopicQueueNums"),
        ({"namesrvAddr": "localhost"}, "namesrvAddr"),
        ({"brokerName": "  "}, "brokerName"),
        ({"messageDelayLevel": "5q"}, "messageDelayLevel"),
        ({"enablePropertyFilter": "on"}, "enablePropertyFilter"),
        ({"brokerPermission": "99"}, "brokerPermission"),
    ],
)
def test_bad_keys_and_values_name_the_key(props: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        broker_config_from_properties(props, BrokerConfig())


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="channelExpiredTimeout"):
        BrokerConfig(channel_expired_timeout=0)


def test_property_filter_can_be_switched_on() -> None:
    cfg = broker_config_from_properties({"enablePropertyFilter": "true"}, BrokerConfig())
    assert cfg.enable_property_filter is True
