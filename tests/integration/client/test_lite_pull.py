"""LitePullConsumer against a real broker: assign and subscribe modes, poll, seek, commits, pause/resume."""

from __future__ import annotations

import pytest

from orbitmq.client import Message, MessageExt, MessageQueue
from orbitmq.client.lite_pull import LitePullConsumer
from orbitmq.client.model import ConsumeFromWhere
from orbitmq.client.producer import Producer
from orbitmq.core.errors import ClientError

from .conftest import Cluster, create_topic, until


async def _drain(c: LitePullConsumer, want: int, timeout_s: float = 0.5) -> list[MessageExt]:
    got: list[MessageExt] = []
    for _ in range(200):
        if len(got) >= want:
            break
        got += await c.poll(timeout_s)
    return got


async def _fill(p: Producer, topic: str, queues: list[MessageQueue], per_queue: int) -> None:
    for mq in queues:
        for i in range(per_queue):
            await p.send(Message(topic, f"{mq.queue_id}-{i}".encode()), queue=mq)


async def test_assign_poll_seek_commit_pause_resume(cluster: Cluster) -> None:
    topic = "TopicLiteA"
    await create_topic(cluster, topic, 4)
    async with Producer("PG", [cluster.ns]) as p:
        c = LitePullConsumer("CG-LA", [cluster.ns], auto_commit=False, long_poll_s=0.5,
                             consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)  # fmt: skip
        q0, q1, q2, _ = await c.fetch_message_queues(topic)
        await _fill(p, topic, [q0, q1, q2], 5)
        await c.assign([q0, q1])
        async with c:
            got = await _drain(c, 10)
            assert sorted(m.body for m in got) == sorted(
                f"{q}-{i}".encode() for q in (0, 1) for i in range(5)
            )
            per_queue = [[m.queue_offset for m in got if m.queue_id == q] for q in (0, 1)]
            assert per_queue == [[0, 1, 2, 3, 4]] * 2  # in queue order
            assert await c.committed(q0) == 0  # manual commit: nothing stored (the broker says "from 0")
            await c.commit()
            assert (await c.committed(q0), await c.committed(q1)) == (5, 5)
            await c.commit({q0: 2})
            assert await c.committed(q0) == 2

            await c.seek(q0, 3)
            assert [m.body for m in await _drain(c, 2)] == [b"0-3", b"0-4"]
            await c.seek_to_begin(q1)
            assert len(await _drain(c, 5)) == 5
            await c.seek_to_end(q1)
            assert await c.poll(0.3) == []
            with pytest.raises(ClientError, match="outside"):
                await c.seek(q0, 99)
            with pytest.raises(ClientError, match="not assigned"):
                await c.seek(q2, 0)

            c.pause([q0])
            await _fill(p, topic, [q0, q1], 2)
            assert {m.queue_id for m in await _drain(c, 2)} == {1}
            assert await c.poll(0.3) == []  # q0 holds back while paused
            c.resume([q0])
            assert [(m.queue_id, m.queue_offset) for m in await _drain(c, 2)] == [(0, 5), (0, 6)]

            await c.assign([q2])  # re-assign: q0/q1 go, q2 comes
            assert c.assignment() == {q2}
            assert sorted(m.body for m in await _drain(c, 5)) == [f"2-{i}".encode() for i in range(5)]


async def test_subscribe_shares_queues_and_auto_commits(cluster: Cluster) -> None:
    topic = "TopicLiteS"
    await create_topic(cluster, topic, 4)
    changes: list[tuple[str, int]] = []

    def consumer(name: str) -> LitePullConsumer:
        c = LitePullConsumer("CG-LS", [cluster.ns], auto_commit_interval_s=0.0, long_poll_s=0.5,
                             consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET, instance_name=name,
                             on_queues_changed=lambda t, qs: changes.append((name, len(qs))))  # fmt: skip
        c.subscribe(topic)
        return c

    async with Producer("PG", [cluster.ns]) as p:
        queues = sorted((await p.instance.route(topic)).subscribe_queues)
        await _fill(p, topic, queues, 3)
        a, b = consumer("a"), consumer("b")
        await a.start()
        await b.start()
        try:
            await until(lambda: len(a.assignment()) == len(b.assignment()) == 2)
            assert a.assignment().isdisjoint(b.assignment())
            got_a, got_b = await _drain(a, 6), await _drain(b, 6)
            await a.poll(0.05)  # the next poll commits what the previous ones returned
        finally:
            await a.shutdown()
        await until(lambda: len(b.assignment()) == 4)  # b takes over a's queues
        await _fill(p, topic, queues, 1)
        got_b += await _drain(b, 4)
        await b.shutdown()
    positions = sorted((m.queue_id, m.queue_offset) for m in got_a + got_b)
    assert positions == [(q, i) for q in range(4) for i in range(4)]  # a's commits let b resume, not replay
    assert ("a", 2) in changes and ("b", 4) in changes
