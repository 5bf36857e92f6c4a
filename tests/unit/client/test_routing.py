from __future__ import annotations

import random

import pytest

from orbitmq.client.model import Message, MessageQueue
from orbitmq.client.routing import QueueSelector, parse_topic_route, select_by_hash
from orbitmq.core.errors import ProtocolError

ROUTE = (
    b'{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-b",'
    b'"cluster":"C"},{"brokerAddrs":{"0":"127.0.0.1:10811"},"brokerName":"broker-a","cluster":"C"},'
    b'{"brokerAddrs":{1:"127.0.0.1:10711"},"brokerName":"broker-s","cluster":"C"}],'
    b'"filterServerTable":{},"queueDatas":[{"brokerName":"broker-b","perm":6,"readQueueNums":2,'
    b'"topicSysFlag":0,"writeQueueNums":3},{"brokerName":"broker-a","perm":4,"readQueueNums":2,'
    b'"topicSysFlag":0,"writeQueueNums":2},{"brokerName":"broker-s","perm":6,"readQueueNums":1,'
    b'"topicSysFlag":0,"writeQueueNums":1}]}'
)


def test_publish_queues_need_write_perm_and_a_master() -> None:
    r = parse_topic_route("T", ROUTE)
    assert r.publish_queues == tuple(MessageQueue("T", "broker-b", i) for i in range(3))
    assert r.subscribe_queues == (
        MessageQueue("T", "broker-a", 0),
        MessageQueue("T", "broker-a", 1),
        MessageQueue("T", "broker-b", 0),
        MessageQueue("T", "broker-b", 1),
        MessageQueue("T", "broker-s", 0),
    )
    assert r.master_addr("broker-a") == "127.0.0.1:10811"
    assert r.master_addr("broker-s") is None
    assert r.any_addr("broker-s") == "127.0.0.1:10711"
    assert r.any_addr("broker-b", 1) == "127.0.0.1:10921"
    assert r.master_addrs() == ["127.0.0.1:10811", "127.0.0.1:10911"]


def test_malformed_route_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_topic_route("T", b'{"brokerDatas":[{"nope":1}]}')


def _two_brokers():
    body = (
        b'{"brokerDatas":[{"brokerAddrs":{"0":"h:1"},"brokerName":"a"},{"brokerAddrs":{"0":"h:2"},'
        b'"brokerName":"b"}],"queueDatas":[{"brokerName":"a","perm":6,"readQueueNums":2,"writeQueueNums":2},'
        b'{"brokerName":"b","perm":6,"readQueueNums":2,"writeQueueNums":2}]}'
    )
    return parse_topic_route("T", body)


def test_round_robin_visits_every_queue_and_skips_failed_broker() -> None:
    r = _two_brokers()
    sel = QueueSelector(random.Random(7))
    picks = [sel.select(r) for _ in range(4)]
    assert sorted(picks) == sorted(r.publish_queues)
    for _ in range(8):
        assert sel.select(r, last_failed_broker="a").broker_name == "b"


def test_only_failed_broker_left_is_still_used() -> None:
    r = parse_topic_route(
        "T",
        b'{"brokerDatas":[{"brokerAddrs":{"0":"h:1"},"brokerName":"a"}],"queueDatas":[{"brokerName":"a",'
        b'"perm":6,"readQueueNums":1,"writeQueueNums":1}]}',
    )
    assert QueueSelector().select(r, last_failed_broker="a").broker_name == "a"


def test_hash_selector_is_stable_per_key() -> None:
    qs = _two_brokers().publish_queues
    m = Message("T", b"x")
    assert select_by_hash(qs, m, "order-1") == select_by_hash(qs, m, "order-1")
    assert len({select_by_hash(qs, m, f"k{i}") for i in range(50)}) == len(qs)
