"""A message's type from its properties and the topic-type check (upstream ``TopicMessageType``,
``DefaultTopicMessageTypeValidator``)."""

from __future__ import annotations

import pytest

from orbitmq.broker.config import BrokerConfig, broker_config_from_properties
from orbitmq.broker.topics import TopicMessageType as T
from orbitmq.broker.topics import message_type_mismatch, message_type_of


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({}, T.NORMAL),
        ({"TAGS": "a", "KEYS": "k"}, T.NORMAL),
        ({"__SHARDINGKEY": "order-1"}, T.FIFO),
        ({"DELAY": "3"}, T.DELAY),
        ({"TIMER_DELIVER_MS": "1700000000000"}, T.DELAY),
        ({"TIMER_DELAY_SEC": "10"}, T.DELAY),
        ({"TIMER_DELAY_MS": "10"}, T.DELAY),
        ({"DELAY": "3", "__SHARDINGKEY": "g"}, T.DELAY),  # delay wins over the group
        ({"TRAN_MSG": "true", "DELAY": "3"}, T.TRANSACTION),  # transaction wins over everything
        ({"TRAN_MSG": "TRUE"}, T.NORMAL),  # upstream compares with "true" exactly
        ({"TRAN_MSG": "false"}, T.NORMAL),
    ],
)
def test_message_type_of(props: dict[str, str], expected: T) -> None:
    assert message_type_of(props) is expected


def test_mismatch_remarks_are_upstreams() -> None:
    assert message_type_mismatch(T.FIFO, T.FIFO) is None
    assert message_type_mismatch(T.MIXED, T.DELAY) is None
    assert message_type_mismatch(T.FIFO, T.NORMAL) == (
        "TopicMessageType validate failed, the expected type is FIFO, but actual type is NORMAL"
    )
    assert message_type_mismatch(T.NORMAL, T.TRANSACTION) is not None
    assert message_type_mismatch(T.MIXED, T.UNSPECIFIED) is not None
    for topic_type in (T.NORMAL, T.FIFO, T.DELAY, T.TRANSACTION):
        for msg_type in (T.NORMAL, T.FIFO, T.DELAY, T.TRANSACTION):
            assert (message_type_mismatch(topic_type, msg_type) is None) == (topic_type is msg_type)


def test_the_check_is_off_by_default_as_on_an_upstream_broker() -> None:
    assert BrokerConfig().enable_topic_message_type_check is False
    assert BrokerConfig().enable_mixed_message_type is False
    cfg = broker_config_from_properties(
        {"enableTopicMessageTypeCheck": "true", "enableMixedMessageType": "true"}, BrokerConfig()
    )
    assert cfg.enable_topic_message_type_check and cfg.enable_mixed_message_type
