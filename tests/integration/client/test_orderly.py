"""Orderly push consumers against a real broker: broker locks per queue, one message at a time per queue,
suspend-and-retry, and per-queue order kept while the group grows and shrinks under load."""

from __future__ import annotations

import asyncio
import collections

from orbitmq.client import ConsumeOrderlyContext, ConsumeOrderlyStatus, Message, MessageExt, MessageQueue
from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere
from orbitmq.client.producer import Producer
from orbitmq.protocol.codes import RequestCode

from .conftest import Cluster, create_topic, until


def _orderly(cluster: Cluster, group: str, topic: str, listener, **kw: object) -> PushConsumer:  # type: ignore[no-untyped-def]
    c = PushConsumer(group, [cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                     long_poll_s=1.0, **kw)  # type: ignore[arg-type]  # fmt: skip
    c.subscribe(topic)
    c.register_orderly_listener(listener)
    return c


def _owned(consumers: list[PushConsumer], topic: str) -> list[MessageQueue]:
    return sorted(mq for c in consumers for mq in c.assigned_queues() if mq.topic == topic)


async def test_order_per_queue_survives_a_growing_and_shrinking_group(cluster: Cluster) -> None:
    topic, group, keys = "TopicOrd", "CG-ORD", 16
    await create_topic(cluster, topic, 8)
    seen: dict[str, list[int]] = collections.defaultdict(list)
    in_listener: collections.Counter[MessageQueue] = collections.Counter()
    overlaps: list[MessageQueue] = []

    async def listener(m: MessageExt, ctx: ConsumeOrderlyContext) -> None:
        mq = MessageQueue(m.topic, m.broker_name, m.queue_id)
        in_listener[mq] += 1
        if in_listener[mq] > 1:
            overlaps.append(mq)  # two members (or two tasks) inside one queue at once
        key, seq = m.body.decode().split(":")
        seen[key].append(int(seq))
        await asyncio.sleep(0.002)
        in_listener[mq] -= 1

    sent: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()

    async def produce(p: Producer) -> None:
        i = 0
        while not stop.is_set():
            key = f"k{i % keys}"
            await p.send_orderly(Message(topic, f"{key}:{sent[key]}".encode()), key)
            sent[key] += 1
            i += 1
            await asyncio.sleep(0.003)

    async def flowing() -> None:
        """Messages keep being sent and consumed: every membership change happens under load."""
        target = sum(sent.values()) + 40
        await until(lambda: sum(sent.values()) >= target and sum(map(len, seen.values())) >= target, 20)

    async with Producer("PG", [cluster.ns]) as p:
        all_queues = sorted((await p.instance.route(topic)).subscribe_queues)
        producing = asyncio.create_task(produce(p))
        consumers = [_orderly(cluster, group, topic, listener)]
        try:
            await consumers[0].start()
            await flowing()
            for _ in range(2):  # grow to 3 while producing
                c = _orderly(cluster, group, topic, listener)
                await c.start()
                consumers.append(c)
                await until(lambda: _owned(consumers, topic) == all_queues, 20)
                assert all(c.assigned_queues() for c in consumers)
                await flowing()
            for _ in range(2):  # and shrink back to 1
                await consumers.pop().shutdown()
                await until(lambda: _owned(consumers, topic) == all_queues, 20)
                await flowing()
            stop.set()
            await producing
            await until(lambda: all(len(seen[k]) >= n for k, n in sent.items()), 20)
        finally:
            stop.set()
            await asyncio.gather(producing, return_exceptions=True)
            for c in consumers:
                await c.shutdown()
    assert sum(sent.values()) >= 200
    for key, n in sent.items():
        assert seen[key] == list(range(n)), f"{key}: order broken, a gap or a duplicate"
    assert not overlaps


async def test_suspend_retries_the_same_message_before_the_next_then_dead_letters(cluster: Cluster) -> None:
    topic = "TopicOrdFail"
    await create_topic(cluster, topic, 1)
    calls: list[tuple[bytes, int]] = []

    def listener(m: MessageExt, ctx: ConsumeOrderlyContext) -> ConsumeOrderlyStatus:
        calls.append((m.body, m.reconsume_times))
        ctx.suspend_current_queue_time_ms = 50
        if m.body == b"poison" or (m.body == b"flaky" and m.reconsume_times < 2):
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        return ConsumeOrderlyStatus.SUCCESS

    async with Producer("PG", [cluster.ns]) as p:
        for body in (b"a", b"flaky", b"b", b"poison", b"c"):
            await p.send(Message(topic, body))
        c = _orderly(cluster, "CG-ORDF", topic, listener, max_reconsume_times=3)
        await c.start()
        try:
            await until(lambda: (b"c", 0) in calls)
            dlq = await p.instance.route("%DLQ%CG-ORDF", refresh=True)
            offset_of_c = c.offset_store.read(MessageQueue(topic, dlq.subscribe_queues[0].broker_name, 0))
        finally:
            await c.shutdown()
    assert calls == [(b"a", 0), (b"flaky", 0), (b"flaky", 1), (b"flaky", 2), (b"b", 0),
                     (b"poison", 0), (b"poison", 1), (b"poison", 2), (b"poison", 3), (b"c", 0)]  # fmt: skip
    assert offset_of_c == 5
    assert c._orderly is not None and c._orderly.dead_lettered == 1


async def test_queues_are_locked_on_the_broker_while_owned_and_unlocked_on_shutdown(cluster: Cluster) -> None:
    topic = "TopicOrdLock"
    await create_topic(cluster, topic, 4)
    c = _orderly(cluster, "CG-LOCK", topic, lambda m, ctx: None)
    await c.start()
    assert cluster.broker is not None
    locks = cluster.broker.locks
    now = cluster.broker.context.now_ms
    try:
        owned = sorted(mq for mq in c.assigned_queues() if mq.topic == topic)
        assert len(owned) == 4
        for mq in owned:
            assert locks.lock_owner("CG-LOCK", _broker_mq(mq), now) == c.client_id
        # another client cannot take them while they are held
        other = PushConsumer("CG-LOCK", [cluster.ns], instance_name="intruder")
        resp = await other.instance.request(
            cluster.broker.address, RequestCode.LOCK_BATCH_MQ, {},
            b'{"consumerGroup":"CG-LOCK","clientId":"intruder","mqSet":[%s]}'
            % b",".join(b'{"topic":"%s","brokerName":"%s","queueId":%d}'
                        % (mq.topic.encode(), mq.broker_name.encode(), mq.queue_id) for mq in owned),
        )  # fmt: skip
        await other.instance.close()
        assert b'"lockOKMQSet":[]' in resp.body_bytes()
    finally:
        await c.shutdown()
    assert all(locks.lock_owner("CG-LOCK", _broker_mq(mq), now) is None for mq in owned)


def _broker_mq(mq: MessageQueue):  # type: ignore[no-untyped-def]
    from orbitmq.broker.locks import MessageQueue as BrokerMQ

    return BrokerMQ(mq.topic, mq.broker_name, mq.queue_id)
