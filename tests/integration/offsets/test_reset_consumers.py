"""Offset resets seen by real consumers (the OrbitMQ SDK's PushConsumer) through the AdminClient:

- a reset for a group that never consumed the topic, then a broker restart, then the first consumer starts
  exactly at the reset point;
- a reset while a consumer runs, forward (skip a backlog) and back (replay): consumption continues from
  the new point and nothing before it is delivered afterwards, except what was already in flight;
- export from one cluster, import into another, and the consumers there resume where the first left off
  (by offset with identical queues; by time with a different queue layout, via sync's mapping).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from orbitmq.admin import AdminClient
from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere, MessageExt
from orbitmq.core.clock import FakeClock
from orbitmq.protocol.codes import RequestCode
from tests.integration.offsets.conftest import Cluster

MakeCluster = Callable[..., Awaitable[Cluster]]


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def create_topic(c: Cluster, topic: str, queues: int) -> None:
    r = await c.call(RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102",
                     readQueueNums=queues, writeQueueNums=queues, perm=6, topicFilterType="SINGLE_TAG",
                     order=False)  # fmt: skip
    assert r.code == 0, r.remark


async def send(c: Cluster, topic: str, bodies: range | list[int], queues: int) -> None:
    for i in bodies:
        assert (await c.send(topic, f"m{i}".encode(), queue_id=i % queues)).code == 0


def consumer(
    c: Cluster, group: str, topic: str, sink: Callable[[MessageExt], object], **kw: object
) -> PushConsumer:
    kw.setdefault("consume_from_where", ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET)
    pc = PushConsumer(group, [c.namesrv.addr], long_poll_s=10.0, **kw)  # type: ignore[arg-type]
    pc.subscribe(topic, "*")
    pc.register_listener(sink)
    return pc


def numbers(msgs: list[MessageExt]) -> list[int]:
    return [int(m.body[1:]) for m in msgs]


async def test_reset_for_a_never_seen_group_then_restart_then_the_first_consumer_starts_there(
    cluster: Cluster,
) -> None:
    await create_topic(cluster, "NeverT", 2)
    await send(cluster, "NeverT", range(20), 2)  # offsets 0..9 on each queue
    async with AdminClient(cluster.namesrv.addr) as admin:
        done = await admin.reset_offset("NeverG", "NeverT", offset=7)
    assert sorted(r.offset for r in done) == [7, 7]
    await cluster.restart_broker()
    got: list[MessageExt] = []
    pc = consumer(cluster, "NeverG", "NeverT", got.append)
    await pc.start()
    try:
        await until(lambda: len(got) >= 6)
    finally:
        await pc.shutdown()
    assert sorted((m.queue_id, m.queue_offset) for m in got) == [(q, o) for q in (0, 1) for o in (7, 8, 9)]


async def test_reset_forward_while_consuming_skips_the_backlog(cluster: Cluster) -> None:
    await create_topic(cluster, "SkipT", 1)
    await send(cluster, "SkipT", range(300), 1)
    gate = asyncio.Event()
    got: list[MessageExt] = []

    async def slow(msg: MessageExt) -> None:
        got.append(msg)
        await gate.wait()

    async with AdminClient(cluster.namesrv.addr) as admin:
        await admin.reset_offset("SkipG", "SkipT", offset=0)
        pc = consumer(cluster, "SkipG", "SkipT", slow, pull_batch_size=8, pull_threshold_for_queue=8,
                      consume_concurrency=1)  # fmt: skip
        await pc.start()
        try:
            await until(lambda: len(got) == 1)
            (pq,) = [pq for mq, pq in pc.process_queues.items() if mq.topic == "SkipT"]
            pulled_before = pq.next_offset  # what may still be in flight: pulled before the reset
            await admin.reset_offset("SkipG", "SkipT", timestamp=-1)  # to the end: skip the backlog
            gate.set()
            await send(cluster, "SkipT", range(300, 305), 1)
            await until(lambda: {300, 301, 302, 303, 304} <= set(numbers(got)))
        finally:
            await pc.shutdown()
    late = [n for n in numbers(got) if n < 300]
    assert late and max(late) < pulled_before + 8, "only messages pulled before the reset were delivered"
    assert len(late) <= 16 and sorted(numbers(got))[-5:] == [300, 301, 302, 303, 304]


async def test_reset_back_while_idle_replays_from_the_new_point_only(cluster: Cluster) -> None:
    await create_topic(cluster, "ReplayT", 2)
    await send(cluster, "ReplayT", range(40), 2)
    got: list[MessageExt] = []
    async with AdminClient(cluster.namesrv.addr) as admin:
        await admin.reset_offset("ReplayG", "ReplayT", offset=0)
        pc = consumer(cluster, "ReplayG", "ReplayT", got.append)
        await pc.start()
        try:
            await until(lambda: len(got) == 40)
            got.clear()
            # Consumers wait in held pulls now: the reset wakes them, they move at once (not after 10 s).
            await admin.reset_offset("ReplayG", "ReplayT", offset=15)
            await until(lambda: len(got) == 10, timeout=5.0)
        finally:
            await pc.shutdown()
    assert sorted((m.queue_id, m.queue_offset) for m in got) == [
        (q, o) for q in (0, 1) for o in range(15, 20)
    ]


async def test_export_import_into_a_second_cluster_then_consumers_resume(make_cluster: MakeCluster) -> None:
    a, b = await make_cluster(), await make_cluster()
    for c in (a, b):  # a mirror: the same messages in the same queues
        await create_topic(c, "DrT", 2)
        await send(c, "DrT", range(20), 2)
    got_a: list[MessageExt] = []
    pc = consumer(
        a, "DrG", "DrT", got_a.append, consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
    )
    await pc.start()
    await until(lambda: len(got_a) == 20)
    await pc.shutdown()  # commits 10 and 10
    for c in (a, b):
        await send(c, "DrT", range(20, 26), 2)
    async with AdminClient(a.namesrv.addr) as admin_a, AdminClient(b.namesrv.addr) as admin_b:
        exported = await admin_a.export_offsets(["DrG"])
        assert [e.offset for e in exported] == [10, 10]
        changes = await admin_b.import_offsets(exported)
    assert [(c.old, c.new) for c in changes] == [(None, 10), (None, 10)]  # DrG never existed on b
    got_b: list[MessageExt] = []
    pc = consumer(b, "DrG", "DrT", got_b.append)
    await pc.start()
    try:
        await until(lambda: len(got_b) >= 6)
    finally:
        await pc.shutdown()
    assert sorted(numbers(got_b)) == list(range(20, 26))


async def test_sync_by_time_into_a_cluster_with_other_queues(make_cluster: MakeCluster) -> None:
    clock = FakeClock()  # both clusters store each message in the same millisecond, one second apart
    a, b = await make_cluster(clock=clock), await make_cluster(clock=clock)
    await create_topic(a, "SyncT", 2)
    await create_topic(b, "SyncT", 3)

    async def both(numbers_: range) -> None:
        for i in numbers_:
            await send(a, "SyncT", [i], 2)
            await send(b, "SyncT", [i], 3)
            await clock.advance(1)

    await both(range(20))
    got_a: list[MessageExt] = []
    pc = consumer(
        a, "SyncG", "SyncT", got_a.append, consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
    )
    await pc.start()
    await until(lambda: len(got_a) == 20)
    await pc.shutdown()
    await both(range(20, 26))
    async with AdminClient(a.namesrv.addr) as admin_a, AdminClient(b.namesrv.addr) as admin_b:
        exported = await admin_a.export_offsets(["SyncG"])
        planned = await admin_b.import_offsets(exported, by_timestamp=True, dry_run=True)
        assert await admin_b.export_offsets(["SyncG"]) == []  # a dry run changes nothing
        changes = await admin_b.import_offsets(exported, by_timestamp=True)
    assert len(changes) == 3 and all(c.how.startswith("topic time") for c in changes)
    assert [c.new for c in planned] == [c.new for c in changes]
    got_b: list[MessageExt] = []
    pc = consumer(b, "SyncG", "SyncT", got_b.append)
    await pc.start()
    try:
        await until(lambda: set(range(20, 26)) <= set(numbers(got_b)))
    finally:
        await pc.shutdown()
    # Queue 0 of a last consumed m18, queue 1 m19: b restarts at m18's time, re-delivering m18 and m19 only.
    assert sorted(numbers(got_b)) == [18, 19, *range(20, 26)]
