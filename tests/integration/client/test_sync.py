"""The blocking facade, driven from a plain thread (as non-async code would), against a real broker."""

from __future__ import annotations

import asyncio
import threading

import pytest

from orbitmq.client import Message, MessageExt, MessageModel
from orbitmq.client.listener import ConsumeOrderlyContext
from orbitmq.client.model import ConsumeFromWhere
from orbitmq.client.sync import EventLoopThread, SyncLitePullConsumer, SyncProducer, SyncPushConsumer
from orbitmq.core.errors import ClientError

from .conftest import Cluster, create_topic

FIRST = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET


def _produce_and_push_consume(ns: str) -> tuple[list[str], set[str], list[bytes]]:
    with SyncProducer("PG", ns) as p:
        sent = [p.send(Message("TopicSync", f"m{i}".encode(), tags="T")).msg_id for i in range(5)]
        sent.append(p.send_async(Message("TopicSync", b"async")).result(10).msg_id)
        ordered = [p.send_orderly(Message("TopicSyncOrd", f"o{i}".encode()), "key") for i in range(4)]
        assert len({r.queue for r in ordered}) == 1
    got: list[str] = []
    threads: set[str] = set()
    done = threading.Event()

    def listener(m: MessageExt) -> bool:
        got.append(m.msg_id)
        threads.add(threading.current_thread().name)
        if len(got) >= len(sent):
            done.set()
        return True

    c = SyncPushConsumer("CG-SYNC", ns, consume_from_where=FIRST, long_poll_s=1.0)
    c.subscribe("TopicSync")
    c.register_listener(listener)
    c.start()
    try:
        assert done.wait(15)
        assert c.assigned_queues()
    finally:
        c.shutdown()
    assert sorted(got) == sorted(sent)

    seen: list[bytes] = []
    all_seen = threading.Event()

    def orderly(m: MessageExt, ctx: ConsumeOrderlyContext) -> None:
        seen.append(m.body)
        if len(seen) == 4:
            all_seen.set()

    o = SyncPushConsumer("CG-SYNC-ORD", ns, consume_from_where=FIRST, long_poll_s=1.0)
    o.subscribe("TopicSyncOrd")
    o.register_orderly_listener(orderly)
    o.start()
    try:
        assert all_seen.wait(15)
    finally:
        o.shutdown()
    return got, threads, seen


async def test_sync_producer_and_push_consumers_from_a_plain_thread(cluster: Cluster) -> None:
    await create_topic(cluster, "TopicSync", 4)
    await create_topic(cluster, "TopicSyncOrd", 4)
    got, threads, seen = await asyncio.to_thread(_produce_and_push_consume, cluster.ns)
    assert len(got) == 6
    assert all(name.startswith("consume-CG-SYNC") for name in threads)  # the pool, not the loop thread
    assert seen == [b"o0", b"o1", b"o2", b"o3"]


def _lite(ns: str) -> tuple[list[bytes], list[bytes], int | None]:
    runtime = EventLoopThread()  # one loop shared by both objects
    try:
        with SyncProducer("PG", ns, runtime=runtime) as p:
            for i in range(3):
                p.send(Message("TopicSyncLite", f"l{i}".encode()))
        with SyncLitePullConsumer("CG-SL", ns, runtime=runtime, consume_from_where=FIRST, auto_commit=False,
                                  long_poll_s=0.5) as c:  # fmt: skip
            mq = c.fetch_message_queues("TopicSyncLite")[0]
            c.assign([mq])
            first = [m.body for m in c.poll(5)]
            c.commit()
            c.seek_to_begin(mq)
            c.pause([mq])
            assert c.poll(0.2) == []
            c.resume([mq])
            again = [m.body for m in c.poll(5)]
            committed = c.committed(mq)
            assert c.assignment() == {mq}
        return first, again, committed
    finally:
        runtime.close()


async def test_sync_lite_pull_consumer_sharing_one_loop(cluster: Cluster) -> None:
    await create_topic(cluster, "TopicSyncLite", 1)
    first, again, committed = await asyncio.to_thread(_lite, cluster.ns)
    assert first == again == [b"l0", b"l1", b"l2"] and committed == 3


async def test_bad_arguments_and_calls_from_the_loop_thread_raise() -> None:
    def scenario() -> None:
        with pytest.raises(ClientError, match="offset_store_dir"):
            SyncPushConsumer("G", "127.0.0.1:1", message_model=MessageModel.BROADCASTING)
        runtime = EventLoopThread()
        try:
            p = SyncProducer("PG", "127.0.0.1:1", runtime=runtime)

            async def nested() -> None:
                p.send(Message("T", b"x"))  # a blocking call on the loop it would wait for

            with pytest.raises(ClientError, match="own event loop"):
                runtime.run(nested())
        finally:
            runtime.close()

    await asyncio.to_thread(scenario)
