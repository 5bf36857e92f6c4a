"""AdminClient against a cluster of two brokers: topic status, groups (create/update/list/describe with a
live SDK consumer and its lag), offsets (show, reset on every broker, export/import)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from orbitmq.admin import GroupSettings, OffsetEntry
from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere, Message, MessageExt
from orbitmq.client.producer import Producer
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.protocol.codes import ResponseCode
from tests.integration.admin.conftest import TwoBrokers


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def produce(ns: str, topic: str, count: int) -> None:
    async with Producer("AdminPG", [ns]) as p:
        for i in range(count):
            await p.send(Message(topic, f"m{i}".encode(), keys=[f"k{i}"]))


async def test_topic_status_shows_min_and_max_per_queue_on_every_broker(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("StatusT", queues=2)
    await produce(two_brokers.namesrv.addr, "StatusT", 8)
    status = await admin.topic_status("StatusT")
    assert [(q.broker_name, q.queue_id) for q in status] == [
        ("broker-a", 0), ("broker-a", 1), ("broker-b", 0), ("broker-b", 1)
    ]  # fmt: skip
    assert sum(q.max_offset for q in status) == 8 and all(q.min_offset == 0 for q in status)
    assert all(q.last_update_ms > 0 for q in status if q.max_offset)


async def test_group_create_update_list_delete(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    created = await admin.create_group("OrdersG", fifo=True, retry_max=3)
    assert {c.broker_name for c in created} == {"broker-a", "broker-b"}
    assert all(
        c.config and c.config["consumeMessageOrderly"] and c.config["retryMaxTimes"] == 3 for c in created
    )
    updated = await admin.update_group("OrdersG", GroupSettings(retry_max=5, consume_enable=False))
    assert all(
        c.config and c.config["retryMaxTimes"] == 5 and c.config["consumeMessageOrderly"] for c in updated
    )
    assert all(c.config and c.config["consumeEnable"] is False for c in updated)
    listed = await admin.group_list()
    assert listed["OrdersG"]["brokers"] == ["broker-a", "broker-b"]
    await admin.delete_group("OrdersG")
    assert "OrdersG" not in await admin.group_list()
    with pytest.raises(BrokerError) as err:
        await admin.update_group("OrdersG", GroupSettings(fifo=False))
    assert err.value.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST


async def test_describe_shows_members_subscriptions_mode_and_lag(two_brokers: TwoBrokers) -> None:
    admin, ns = two_brokers.admin, two_brokers.namesrv.addr
    await admin.create_topic("DescT", queues=2)
    await produce(ns, "DescT", 10)
    got: list[MessageExt] = []
    consumer = PushConsumer("DescG", [ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                            long_poll_s=1.0)  # fmt: skip
    consumer.subscribe("DescT", "*")
    consumer.register_listener(got.append)
    await consumer.start()
    try:
        await until(lambda: len(got) == 10)
        await consumer.persist_offsets()
        desc = await admin.describe_group("DescG")
        assert [m.client_id for m in desc.members] == [consumer.client_id]
        assert desc.members[0].brokers == ("broker-a", "broker-b") and desc.members[0].language == "PYTHON"
        assert desc.subscriptions["DescT"] == "*" and desc.mode == "CLUSTERING PUSH"
        lags = [q for q in desc.lags if q.topic == "DescT"]
        assert len(lags) == 4 and desc.total_lag == 0
        assert sum(q.consumer_offset for q in lags) == 10
    finally:
        await consumer.shutdown()
    await produce(ns, "DescT", 3)
    offline = await admin.describe_group("DescG")
    assert offline.members == [] and offline.total_lag == 3
    shown = await admin.show_offsets("DescG", "DescT")
    assert sum(q.lag for q in shown) == 3


async def test_reset_on_every_broker_by_offset_timestamp_and_one_queue(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("ResetT", queues=2)
    await produce(two_brokers.namesrv.addr, "ResetT", 12)  # 3 per queue
    to_end = await admin.reset_offset("NewG", "ResetT", timestamp=-1)
    assert sorted((r.broker_name, r.queue_id, r.offset) for r in to_end) == [
        ("broker-a", 0, 3), ("broker-a", 1, 3), ("broker-b", 0, 3), ("broker-b", 1, 3)
    ]  # fmt: skip
    one = await admin.reset_offset("NewG", "ResetT", offset=1, queue=1, broker="broker-b")
    assert [(r.broker_name, r.queue_id, r.offset) for r in one] == [("broker-b", 1, 1)]
    shown = {
        (q.broker_name, q.queue_id): q.consumer_offset for q in await admin.show_offsets("NewG", "ResetT")
    }
    assert shown == {("broker-a", 0): 3, ("broker-a", 1): 3, ("broker-b", 0): 3, ("broker-b", 1): 1}
    with pytest.raises(ClientError):
        await admin.reset_offset("NewG", "ResetT", offset=1, timestamp=0)
    with pytest.raises(BrokerError) as err:
        await admin.reset_offset("NewG", "ResetT", offset=99, queue=0)
    assert err.value.code == ResponseCode.INVALID_PARAMETER


async def test_export_then_import_recreates_never_seen_entries(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("ExpT", queues=2)
    await produce(two_brokers.namesrv.addr, "ExpT", 8)
    await admin.reset_offset("ExpG", "ExpT", offset=1)
    entries = await admin.export_offsets(["ExpG"])
    assert [(e.broker_name, e.queue_id, e.offset) for e in entries] == [
        ("broker-a", 0, 1), ("broker-a", 1, 1), ("broker-b", 0, 1), ("broker-b", 1, 1)
    ]  # fmt: skip
    assert all(e.max_offset == 2 and e.last_timestamp > 0 for e in entries)
    # The same positions for a group that never existed, and one entry the cluster cannot take.
    moved = [
        OffsetEntry("ImpG", e.topic, e.broker_name, e.queue_id, 2, e.min_offset, e.max_offset)
        for e in entries
    ]
    moved.append(OffsetEntry("ImpG", "ExpT", "broker-z", 0, 1))
    moved.append(OffsetEntry("ImpG", "ExpT", "broker-a", 0, 50))  # beyond the queue: clamped
    dry = await admin.import_offsets(moved, dry_run=True)
    assert all(c.old is None for c in dry) and await admin.show_offsets("ImpG") == []
    changes = await admin.import_offsets(moved)
    skipped = [c for c in changes if c.skipped]
    assert len(skipped) == 1 and "broker-z" in skipped[0].how
    clamped = [c for c in changes if c.how.startswith("clamped")]
    assert len(clamped) == 1 and clamped[0].new == 2
    shown = await admin.show_offsets("ImpG", "ExpT")
    assert [q.consumer_offset for q in shown] == [2, 2, 2, 2]
