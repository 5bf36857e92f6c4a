"""A concurrent listener that keeps failing: each send-back schedules the message one delay level later
(3 + reconsumeTimes, so the waits grow), and after ``max_reconsume_times`` it goes to %DLQ%<group>."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbitmq.client import Message, MessageExt, MessageQueue, PushConsumer
from orbitmq.client.model import ConsumeFromWhere
from orbitmq.client.producer import Producer
from orbitmq.client.pull import pull
from orbitmq.core.errors import OrbitError

from .conftest import Cluster, until

#: Level 3 (first retry) waits 1 s, level 4 (second retry) 2 s, level 5 would wait 3 s.
GROWING_DELAYS = "1s 1s 1s 2s 3s"
SCHEDULE_TOPIC = "SCHEDULE_TOPIC_XXXX"


@pytest.fixture
async def growing(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = await Cluster(tmp_path, GROWING_DELAYS).start()
    try:
        yield c
    finally:
        await c.stop()


async def test_redelivery_waits_longer_each_time_then_dead_letters(growing: Cluster) -> None:
    deliveries: list[tuple[int, float]] = []

    def fail(m: MessageExt) -> bool:
        deliveries.append((m.reconsume_times, time.monotonic()))
        raise RuntimeError("handler bug")

    async with Producer("PG", [growing.ns]) as p:
        sent = await p.send(Message("TopicRedeliver", b"poison", keys=["poison-1"]))
        c = PushConsumer("CG-RD", [growing.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                         long_poll_s=1.0, max_reconsume_times=2)  # fmt: skip
        c.subscribe("TopicRedeliver")
        c.register_listener(fail)
        await c.start()
        dlq_mq = MessageQueue("%DLQ%CG-RD", sent.queue.broker_name, 0)
        dead: list[MessageExt] = []

        async def dead_lettered() -> bool:
            try:
                await p.instance.route(dlq_mq.topic, refresh=True)
                dead[:] = (await pull(p.instance, "probe", dlq_mq, 0, 8)).messages
            except OrbitError:
                return False
            return bool(dead)

        try:
            await until(lambda: len(deliveries) >= 3, 20)
            async with asyncio.timeout(10):
                while not await dead_lettered():
                    await asyncio.sleep(0.05)
        finally:
            await c.shutdown()
    assert growing.broker is not None
    store = growing.broker.store
    assert [r for r, _ in deliveries] == [0, 1, 2]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(deliveries)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # never earlier than its level's delay
    # each retry went through the next delay level's schedule queue: level 3, then 4, never 5
    assert [store.max_offset_in_queue(SCHEDULE_TOPIC, q) for q in (2, 3, 4)] == [1, 1, 0]
    assert len(dead) == 1 and dead[0].body == b"poison" and dead[0].keys == ["poison-1"]
    assert dead[0].properties.get("ORIGIN_MESSAGE_ID")
