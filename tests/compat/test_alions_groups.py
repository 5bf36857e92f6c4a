"""ali-ons 3.12.0 consumer groups against OrbitMQ: queue sharing and take-over, offsets that survive a
consumer restart, and a broker restart that keeps topics, messages and offsets (remoting-protocol §7.5-§7.6)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbitmq.protocol.codes import RequestCode
from tests.compat.alions import Event, NodeProcess, NodeProcesses
from tests.compat.servers import (
    FAST_CONSUMER,
    OrbitCluster,
    bodies,
    broker_request,
    create_topic,
    delivered,
    orbitmq_cluster,
    unexpected_errors,
)

STEP = 30.0  # upper bound of one awaited step (ali-ons rebalances every second here)


def allocation(proc: NodeProcess, topic: str) -> set[int]:
    """The queues ``proc`` owns now, from its latest ``allocation`` event for ``topic``."""
    events = [e for e in proc.find("allocation") if e["topic"] == topic]
    return {q["queueId"] for q in events[-1]["queues"]} if events else set()


async def eventually(condition, what: str, timeout: float = STEP) -> None:  # type: ignore[no-untyped-def]
    """Wait for a condition over several processes' events (no single event to await)."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


async def produce(
    alions: NodeProcesses, cluster: OrbitCluster, topic: str, count: int, body: str
) -> list[Event]:
    producer = await alions.start_producer(cluster.namesrv_addr, topic, count=count, body=body)
    done = await producer.wait_for_event("done", timeout=STEP)
    assert done["sent"] == count, producer.describe()
    return producer.find("sent")


async def committed(cluster: OrbitCluster, group: str, topic: str, queues: int) -> int:
    """Sum of the broker's committed offsets of ``group`` on ``topic``."""
    total = 0
    for q in range(queues):
        r = await broker_request(
            cluster, RequestCode.QUERY_CONSUMER_OFFSET, consumerGroup=group, topic=topic, queueId=q
        )
        total += int(r.ext_fields.get("offset", "0")) if r.code == 0 else 0
    return total


async def wait_committed(cluster: OrbitCluster, group: str, topic: str, queues: int, expected: int) -> None:
    async with asyncio.timeout(STEP):
        while await committed(cluster, group, topic, queues) != expected:
            await asyncio.sleep(0.2)


async def test_group_shares_queues_and_a_survivor_takes_over(alions: NodeProcesses, tmp_path: Path) -> None:
    topic = "AlionsShare"
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, topic, 4)
        c1 = await alions.start_consumer(cluster.namesrv_addr, "CG_SHARE", topic, options=FAST_CONSUMER)
        await c1.wait_for_event("ready", timeout=STEP)
        c2 = await alions.start_consumer(cluster.namesrv_addr, "CG_SHARE", topic, options=FAST_CONSUMER)
        await c2.wait_for_event("ready", timeout=STEP)
        # After rebalancing each queue belongs to exactly one of them (averagely: 2 + 2).
        await eventually(
            lambda: (
                allocation(c1, topic) | allocation(c2, topic) == {0, 1, 2, 3}
                and not allocation(c1, topic) & allocation(c2, topic)
                and len(allocation(c1, topic)) == 2
            ),
            f"queues split between the two consumers\n{c1.describe()}\n{c2.describe()}",
        )
        await produce(alions, cluster, topic, 20, "share-{i}")
        await eventually(
            lambda: len({m["body"] for p in (c1, c2) for m in p.find("msg")}) == 20,
            f"all 20 messages consumed\n{c1.describe()}\n{c2.describe()}",
        )
        for proc in (c1, c2):
            owned = allocation(proc, topic)
            assert {m["queueId"] for m in proc.find("msg")} <= owned, proc.describe()
        assert len(c1.find("msg")) + len(c2.find("msg")) == 20  # nobody got a message twice

        # One consumer leaves (UNREGISTER_CLIENT): the other takes over all four queues.
        await c2.stop()
        assert c2.find("closed"), c2.describe()
        await eventually(lambda: allocation(c1, topic) == {0, 1, 2, 3}, f"take-over\n{c1.describe()}")
        since = len(c1.events)
        await produce(alions, cluster, topic, 8, "after-{i}")
        late = await delivered(c1, 8, timeout=STEP, since=since)
        assert bodies(late) == [f"after-{i}" for i in range(8)], c1.describe()
        assert {m["queueId"] for m in late} == {0, 1, 2, 3}
        assert not unexpected_errors(c1) and not unexpected_errors(c2), c1.describe()


async def test_restarted_consumer_resumes_from_committed_offsets(
    alions: NodeProcesses, tmp_path: Path
) -> None:
    topic, group = "AlionsResume", "CG_RESUME"
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, topic, 2)
        await produce(alions, cluster, topic, 6, "old-{i}")
        first = await alions.start_consumer(cluster.namesrv_addr, group, topic, options=FAST_CONSUMER)
        assert bodies(await delivered(first, 6)) == [f"old-{i}" for i in range(6)]
        await wait_committed(cluster, group, topic, 2, 6)
        await first.stop()

        await produce(alions, cluster, topic, 4, "new-{i}")
        second = await alions.start_consumer(cluster.namesrv_addr, group, topic, options=FAST_CONSUMER)
        assert bodies(await delivered(second, 4)) == [f"new-{i}" for i in range(4)], second.describe()
        await wait_committed(cluster, group, topic, 2, 10)
        assert not unexpected_errors(first) and not unexpected_errors(second), second.describe()


async def test_restarted_broker_keeps_topics_messages_and_offsets(
    alions: NodeProcesses, tmp_path: Path
) -> None:
    topic, group = "AlionsDurable", "CG_DURABLE"
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, topic, 4)
        await produce(alions, cluster, topic, 5, "before-{i}")
        consumer = await alions.start_consumer(cluster.namesrv_addr, group, topic, options=FAST_CONSUMER)
        assert len(await delivered(consumer, 5)) == 5
        await wait_committed(cluster, group, topic, 4, 5)
        await consumer.stop()

        await cluster.restart_broker()

        # The topic is still there (ali-ons could not send to an unknown topic), offsets too: the group
        # resumes after the 5 it had consumed.
        assert await committed(cluster, group, topic, 4) == 5
        resumed = await alions.start_consumer(cluster.namesrv_addr, group, topic, options=FAST_CONSUMER)
        await resumed.wait_for_event("ready", timeout=STEP)
        await produce(alions, cluster, topic, 3, "after-{i}")
        assert bodies(await delivered(resumed, 3)) == [f"after-{i}" for i in range(3)], resumed.describe()
        # The old messages are still stored: a new group reading from the first offset gets all 8.
        fresh = await alions.start_consumer(cluster.namesrv_addr, "CG_FRESH", topic, options=FAST_CONSUMER,
                                            consume_from_where="CONSUME_FROM_FIRST_OFFSET")  # fmt: skip
        assert sorted(bodies(await delivered(fresh, 8))) == sorted(
            [f"before-{i}" for i in range(5)] + [f"after-{i}" for i in range(3)]
        ), fresh.describe()
        assert not unexpected_errors(resumed) and not unexpected_errors(fresh), resumed.describe()
