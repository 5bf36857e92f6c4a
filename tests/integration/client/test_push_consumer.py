from __future__ import annotations

import asyncio
import time

from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere, Message, MessageExt, MessageQueue
from orbitmq.client.producer import Producer
from orbitmq.core.errors import BrokerError

from .conftest import Cluster


def _consumer(
    cluster: Cluster, group: str, topic: str, sink: list[MessageExt], expr: str = "*", **kw: object
) -> PushConsumer:
    c = PushConsumer(group, [cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                     long_poll_s=1.0, rebalance_interval_s=20.0, **kw)  # type: ignore[arg-type]  # fmt: skip
    c.subscribe(topic, expr)
    c.register_listener(sink.append)
    return c


async def _until(pred, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not pred():
            await asyncio.sleep(0.05)


async def test_round_trip_with_tags_and_keys(cluster: Cluster) -> None:
    async with Producer("PG", [cluster.ns]) as p:
        sent = [
            await p.send(Message("TopicRT", f"m{i}".encode(), tags="A" if i % 2 else "B", keys=[f"k{i}"]))
            for i in range(10)
        ]
        got: list[MessageExt] = []
        c = _consumer(cluster, "CG-RT", "TopicRT", got, "A")
        await c.start()
        try:
            await _until(lambda: len(got) >= 5)
        finally:
            await c.shutdown()
    assert sorted(m.msg_id for m in got) == sorted(s.msg_id for i, s in enumerate(sent) if i % 2)
    assert all(m.tags == "A" and m.keys == [f"k{int(m.body[1:])}"] for m in got)


def _owners(consumers: list[PushConsumer]) -> list[MessageQueue]:
    return [mq for c in consumers for mq in c.assigned_queues() if not mq.topic.startswith("%")]


async def test_group_grows_and_shrinks_every_queue_owned_once_and_nothing_lost(cluster: Cluster) -> None:
    topic, got = "TopicRB", []
    async with Producer("PG", [cluster.ns]) as p:
        await p.send(Message(topic, b"create"))
        for _ in range(100):  # the auto-created topic reaches the NameServer with the broker's next register
            try:
                route = await p.instance.route(topic, refresh=True)
                break
            except BrokerError:
                await asyncio.sleep(0.05)
        all_queues = sorted(route.subscribe_queues)
        consumers: list[PushConsumer] = []
        n_sent = 1
        for size in (1, 2, 3, 4):
            assert len(consumers) == size - 1
            c = _consumer(cluster, "CG-RB", topic, got)
            await c.start()
            consumers.append(c)
            await _until(lambda: sorted(_owners(consumers)) == all_queues)
            for _ in range(8):
                await p.send(Message(topic, f"{n_sent}".encode()))
                n_sent += 1
        for c in consumers:
            assert c.assigned_queues(), "with 8 queues and 4 consumers everyone owns some"
        leaving = consumers.pop()
        t0 = time.monotonic()
        await leaving.shutdown()
        await _until(lambda: sorted(_owners(consumers)) == all_queues)
        print(f"\nqueues of the leaving member re-owned after {time.monotonic() - t0:.3f}s")
        assert time.monotonic() - t0 < 15  # via NOTIFY_CONSUMER_IDS_CHANGED, not the 20 s timer
        for _ in range(8):
            await p.send(Message(topic, f"{n_sent}".encode()))
            n_sent += 1
        try:
            await _until(lambda: len({m.msg_id for m in got}) >= n_sent)
        finally:
            for c in consumers:
                await c.shutdown()
    assert len({m.msg_id for m in got}) == n_sent


async def test_failing_listener_redelivers_with_growing_reconsume_times_then_dlq(cluster: Cluster) -> None:
    seen: list[int] = []

    def fail(m: MessageExt) -> bool:
        seen.append(m.reconsume_times)
        return False

    async with Producer("PG", [cluster.ns]) as p:
        await p.send(Message("TopicRetry", b"poison"))
        c = PushConsumer("CG-R", [cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                         long_poll_s=1.0, max_reconsume_times=2)  # fmt: skip
        c.subscribe("TopicRetry")
        c.register_listener(fail)
        await c.start()
        try:
            await _until(lambda: len(seen) >= 3, 25)
            # The third failure's send-back creates %DLQ%CG-R on the broker, which then registers it with the
            # NameServer: the route appears shortly after the listener returned, not at that instant.
            async with asyncio.timeout(15):
                while True:
                    try:
                        dlq = await p.instance.route("%DLQ%CG-R", refresh=True)
                        break
                    except BrokerError:
                        await asyncio.sleep(0.1)
        finally:
            await c.shutdown()
    assert seen[:3] == [0, 1, 2]
    assert dlq.subscribe_queues


async def test_clean_shutdown_finishes_and_commits_what_it_holds_so_the_successor_repeats_nothing(
    cluster: Cluster,
) -> None:
    from .conftest import create_topic

    await create_topic(cluster, "TopicBye", 2)
    got: list[tuple[str, str]] = []

    def slow(name: str):  # type: ignore[no-untyped-def]
        async def listener(m: MessageExt) -> None:
            got.append((name, m.msg_id))
            await asyncio.sleep(0.1)

        return listener

    group = []
    for name in ("a", "b"):
        c = PushConsumer("CG-BYE", [cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                         long_poll_s=1.0, consume_concurrency=2, instance_name=name)  # fmt: skip
        c.subscribe("TopicBye")
        c.register_listener(slow(name))
        await c.start()
        group.append(c)
    a, b = group
    await _until(lambda: sorted(_owners(group)) == [MessageQueue("TopicBye", "broker-a", q) for q in (0, 1)])
    async with Producer("PG", [cluster.ns]) as p:
        sent = [await p.send(Message("TopicBye", f"{i}".encode())) for i in range(20)]
    await _until(lambda: sum(1 for n, _ in got if n == "a") >= 2)  # a is busy with its queue
    await a.shutdown()  # its listeners finish what it pulled; the offsets past them are committed
    try:
        await _until(lambda: len({i for _, i in got}) >= 20)
        await asyncio.sleep(0.3)  # a duplicate would arrive right after the take-over
    finally:
        await b.shutdown()
    assert sorted(i for _, i in got) == sorted(s.msg_id for s in sent)  # each exactly once
