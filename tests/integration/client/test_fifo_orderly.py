"""FIFO with classic orderly consumers: many message groups (sharding keys) sent interleaved by several
producers to a ``message.type=FIFO`` topic; each group is consumed in send order, across redeliveries
(suspend-and-retry) and across a consumer crash (kill -9 of a member: its queues move to the survivor once
their broker locks lapse, and the survivor resumes each group from the last committed offset, in order)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbitmq.client import ConsumeOrderlyContext, ConsumeOrderlyStatus, Message, MessageExt
from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere
from orbitmq.client.producer import Producer

from .conftest import Cluster, create_topic, until

GROUPS, PRODUCERS, PER_PRODUCER_AND_GROUP, QUEUES = 24, 3, 6, 4
#: A dead member's broker locks lapse after this (upstream's lockMaxLiveTime, 60 s by default).
LOCK_LIVE_MS = 1500

Delivery = tuple[str, int, int]  # (body, queue id, queue offset)


class FifoCluster(Cluster):
    """A FIFO-checking broker whose dead members' queue locks lapse quickly."""

    def __init__(self, root: Path) -> None:
        super().__init__(
            root, enable_topic_message_type_check=True, rebalance_lock_max_live_time=LOCK_LIVE_MS
        )

    async def create_fifo_topic(self, topic: str) -> None:
        await create_topic(self, topic, QUEUES, attributes="+message.type=FIFO")


@pytest.fixture
async def fifo(tmp_path: Path) -> AsyncIterator[FifoCluster]:
    c = await FifoCluster(tmp_path).start()
    try:
        yield c
    finally:
        await c.stop()


async def produce_interleaved(cluster: FifoCluster, topic: str) -> dict[str, list[str]]:
    """PRODUCERS producers at once, each sending PER_PRODUCER_AND_GROUP messages to every group in a
    shuffled interleaving; a message is ``group:producer:seq``. Returns each group's bodies per producer."""
    sent: dict[str, list[str]] = collections.defaultdict(list)

    async def one(p_index: int) -> None:
        order = [g for g in range(GROUPS) for _ in range(PER_PRODUCER_AND_GROUP)]
        random.Random(p_index).shuffle(order)
        seq: collections.Counter[int] = collections.Counter()
        async with Producer(f"PG-FIFO-{p_index}", [cluster.ns]) as p:
            for g in order:
                key = f"g{g}"
                body = f"{key}:{p_index}:{seq[g]}"
                msg = Message(topic, body.encode(), properties={"__SHARDINGKEY": key})  # a FIFO message
                await p.send_orderly(msg, key)
                sent[f"{key}:{p_index}"].append(body)
                seq[g] += 1

    await asyncio.gather(*(one(i) for i in range(PRODUCERS)))
    return sent


def orderly(cluster: FifoCluster, group: str, topic: str, listener, name: str) -> PushConsumer:  # type: ignore[no-untyped-def]
    c = PushConsumer(group, [cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                     long_poll_s=1.0, rebalance_interval_s=1.0, instance_name=name)  # fmt: skip
    c.subscribe(topic)
    c.register_orderly_listener(listener)
    return c


def check_group_order(
    deliveries: list[Delivery], sent: dict[str, list[str]], *, duplicates_allowed: bool
) -> None:
    """Per producer and group: bodies in send order; per group: one queue, offsets increasing."""
    per_stream: dict[str, list[str]] = collections.defaultdict(list)
    per_group: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for body, q, o in deliveries:
        g, p, _ = body.split(":")
        per_stream[f"{g}:{p}"].append(body)
        per_group[g].append((q, o))
    assert set(per_stream) == set(sent)
    for stream, bodies in per_stream.items():
        if not duplicates_allowed:
            assert bodies == sent[stream], f"{stream}: {bodies}"
        else:
            assert list(dict.fromkeys(bodies)) == sent[stream], f"{stream}: {bodies}"
    for g, positions in per_group.items():
        assert len({q for q, _ in positions}) == 1, f"{g} spread over queues {positions}"
        offsets = [o for _, o in positions]
        if not duplicates_allowed:
            assert offsets == sorted(set(offsets)), f"{g}: {offsets}"


async def test_many_groups_from_several_producers_stay_in_order_across_redeliveries(
    fifo: FifoCluster,
) -> None:
    topic = "FifoOrders"
    await fifo.create_fifo_topic(topic)
    # The topic is FIFO and the broker checks types: a message without a group is refused.
    async with Producer("PG-NOGROUP", [fifo.ns]) as p:
        with pytest.raises(Exception, match="TopicMessageType validate failed"):
            await p.send_orderly(Message(topic, b"no group"), "k")
    sent = await produce_interleaved(fifo, topic)
    total = sum(map(len, sent.values()))
    successes: list[Delivery] = []
    attempts: dict[int, list[str]] = collections.defaultdict(list)  # per queue, every attempt in order
    failed_once: set[str] = set()

    def listener(m: MessageExt, ctx: ConsumeOrderlyContext) -> ConsumeOrderlyStatus:
        body = m.body.decode()
        attempts[m.queue_id].append(body)
        if int(body.rsplit(":", 1)[1]) % 4 == 1 and body not in failed_once:  # every 4th fails once
            failed_once.add(body)
            ctx.suspend_current_queue_time_ms = 10
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        successes.append((body, m.queue_id, m.queue_offset))
        return ConsumeOrderlyStatus.SUCCESS

    consumers = [orderly(fifo, "CG-FIFO", topic, listener, f"fifo-c{i}") for i in range(2)]
    try:
        for c in consumers:
            await c.start()
        await until(lambda: len(successes) >= total, 60)
    finally:
        for c in consumers:
            await c.shutdown()
    assert total == GROUPS * PRODUCERS * PER_PRODUCER_AND_GROUP and len(failed_once) > 50
    check_group_order(successes, sent, duplicates_allowed=False)
    for q, bodies in attempts.items():  # a failed message is retried before anything after it in its queue
        for i, body in enumerate(bodies):
            if body in failed_once and bodies.index(body) == i:
                assert bodies[i + 1] == body, f"queue {q}: {body} not retried next"


@pytest.mark.slow
async def test_groups_stay_in_order_when_a_consumer_is_killed(fifo: FifoCluster, tmp_path: Path) -> None:
    topic = "FifoCrash"
    await fifo.create_fifo_topic(topic)
    sent = await produce_interleaved(fifo, topic)
    total = sum(map(len, sent.values()))
    survivor: list[Delivery] = []

    async def slow_listener(m: MessageExt, ctx: ConsumeOrderlyContext) -> None:
        survivor.append((m.body.decode(), m.queue_id, m.queue_offset))
        await asyncio.sleep(0.002)

    victim_lines: list[Delivery] = []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.client.fifo_worker", fifo.ns, "CG-CRASH", topic, "fifo-victim", "10",
        stdout=asyncio.subprocess.PIPE, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout is not None

    async def read_victim() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = json.loads(raw)
            if "body" in line:
                victim_lines.append((line["body"], line["q"], line["o"]))

    reader = asyncio.create_task(read_victim())
    c = orderly(fifo, "CG-CRASH", topic, slow_listener, "fifo-survivor")
    try:
        await until(lambda: len(victim_lines) >= 20, 30)  # the victim consumes (alone, then shares)
        await c.start()
        await until(lambda: len(survivor) >= 20 and len(victim_lines) >= 60, 30)
        proc.send_signal(signal.SIGKILL)  # no unlock, no last commit
        await proc.wait()
        await reader
        crash_at, survivor_at_crash = len(victim_lines), len(survivor)
        await until(lambda: len({b for b, _, _ in survivor} | {b for b, _, _ in victim_lines}) >= total, 60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await c.shutdown()
    assert 0 < crash_at < total
    taken_over = {q for _, q, _ in victim_lines[-5:]}  # queues the victim was in the middle of
    assert taken_over <= {q for _, q, _ in survivor[survivor_at_crash:]}, "the survivor never took them over"
    # Each member alone delivered every group it saw in order (per producer: consecutive, no repeat) ...
    for deliveries in (victim_lines, survivor):
        by_stream: dict[str, list[str]] = collections.defaultdict(list)
        for body, _, _ in deliveries:
            g, p, _ = body.split(":")
            by_stream[f"{g}:{p}"].append(body)
        for stream, bodies in by_stream.items():
            expected = sent[stream]
            start = expected.index(bodies[0])
            assert bodies == expected[start : start + len(bodies)], f"{stream}: {bodies}"
    # ... and together they lost nothing: the survivor resumed each group at or before where the victim
    # stopped (a redelivery of what was consumed but not committed is allowed, a gap is not).
    check_group_order(victim_lines + survivor, sent, duplicates_allowed=True)
