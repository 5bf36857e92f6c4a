"""FIFO (orderly) pop, after upstream's PopOrderlyIT / NotificationIT scenarios (pop-and-storage §1.14):
a batch blocks its queue for the group until acked or visible again, redelivery keeps the order and counts
one more reconsume, the same attempt id re-enters, and acks or unblocking wake held pops."""

from __future__ import annotations

import asyncio

from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.pop import NotificationResponseHeader

from .conftest import Cluster, ack, batch_ack, change_invisible, pop, send_many, until


async def fifo(c: Cluster, topic: str, attempt: str, **kw: object) -> object:
    return await pop(c, topic, queue_id=0, order=True, attempt_id=attempt, **kw)  # type: ignore[arg-type]


async def advance(c: Cluster, seconds: float) -> None:
    from orbitmq.core.clock import FakeClock

    assert isinstance(c.b.clock, FakeClock)
    await c.b.clock.advance(seconds)


async def test_orderly_pop_without_ack_redelivers_the_batch_in_order(fake: Cluster) -> None:
    c = fake
    await send_many(c, "FO", 3)
    first = await pop(c, "FO", queue_id=0, order=True, attempt_id="a1", invisible_ms=5_000)
    assert first.bodies == [b"m0", b"m1", b"m2"]
    assert all(m.extra.revive_qid == 999 and m.extra.is_order for m in first.messages)
    assert [m.order_count for m in first.messages] == [0, 0, 0]
    assert first.header.order_count_info == "0 qo0%0 0;0 qo0%1 0;0 qo0%2 0;0 0 0"
    assert c.b.offsets.query_offset("G", "FO", 0) == 0  # the offset waits for acks
    # Another consumer (another attempt) finds the queue blocked; no checkpoint was written.
    assert (await pop(c, "FO", queue_id=0, order=True, attempt_id="a2")).code == ResponseCode.POLLING_TIMEOUT
    assert c.b.pop is not None and c.b.pop.stats.checkpoints_written == 0

    await advance(c, 6)
    again = await pop(c, "FO", queue_id=0, order=True, attempt_id="a3", invisible_ms=5_000)
    assert again.bodies == [b"m0", b"m1", b"m2"] and [m.order_count for m in again.messages] == [1, 1, 1]


async def test_orderly_pop_with_acks_moves_the_offset_past_acked_messages_only(fake: Cluster) -> None:
    c = fake
    await send_many(c, "FA", 4)
    batch = await pop(c, "FA", queue_id=0, order=True, attempt_id="x", max_nums=3)
    m0, m1, m2 = batch.messages
    assert await ack(c, "FA", m1) == ResponseCode.SUCCESS  # out of order: nothing to commit yet
    assert c.b.offsets.query_offset("G", "FA", 0) == 0
    assert await ack(c, "FA", m0) == ResponseCode.SUCCESS
    assert c.b.offsets.query_offset("G", "FA", 0) == 2
    assert await batch_ack(c, "FA", [m2]) == ResponseCode.SUCCESS
    assert c.b.offsets.query_offset("G", "FA", 0) == 3
    assert await ack(c, "FA", m0) == ResponseCode.SUCCESS  # below the committed offset: ignored
    nxt = await pop(c, "FA", queue_id=0, order=True, attempt_id="y")
    assert nxt.bodies == [b"m3"] and nxt.messages[0].order_count == 0


async def test_redelivery_after_partial_ack_and_stale_handles(fake: Cluster) -> None:
    c = fake
    await send_many(c, "FS", 3)
    first = await pop(c, "FS", queue_id=0, order=True, attempt_id="a", invisible_ms=2_000)
    assert await ack(c, "FS", first.messages[0]) == ResponseCode.SUCCESS
    await advance(c, 3)
    again = await pop(c, "FS", queue_id=0, order=True, attempt_id="b", invisible_ms=2_000)
    assert again.bodies == [b"m1", b"m2"] and [m.order_count for m in again.messages] == [1, 1]
    # The first batch's handle of m1 is stale now: its ack changes nothing.
    assert await ack(c, "FS", first.messages[1]) == ResponseCode.SUCCESS
    assert c.b.offsets.query_offset("G", "FS", 0) == 1
    for m in again.messages:
        assert await ack(c, "FS", m) == ResponseCode.SUCCESS
    assert c.b.offsets.query_offset("G", "FS", 0) == 3


async def test_reentrant_orderly_pop_with_the_same_attempt_id(fake: Cluster) -> None:
    """A client that lost the answer retries with the same attempt id (rocketmq-clients #708)."""
    c = fake
    await send_many(c, "FR", 2)
    first = await pop(c, "FR", queue_id=0, order=True, attempt_id="same")
    retry = await pop(c, "FR", queue_id=0, order=True, attempt_id="same")
    assert retry.bodies == first.bodies == [b"m0", b"m1"]
    assert [m.order_count for m in retry.messages] == [0, 0]
    other = await pop(c, "FR", queue_id=0, order=True, attempt_id="other")
    assert other.code == ResponseCode.POLLING_TIMEOUT


async def test_notification_for_orderly(fake: Cluster) -> None:
    """Upstream NotificationIT.testNotificationOrderly."""
    c = fake
    await send_many(c, "FN", 1)
    await pop(c, "FN", queue_id=0, order=True, attempt_id="att")
    await send_many(c, "FN", 1, prefix="n")

    async def note(attempt: str) -> bool:
        r = await c.call(
            RequestCode.NOTIFICATION, consumerGroup="G", topic="FN", queueId=0, pollTime=0,
            bornTime=c.b.clock.now_ms(), order=True, attemptId=attempt,
        )  # fmt: skip
        assert r.code == ResponseCode.SUCCESS
        return NotificationResponseHeader.from_command(r).has_msg

    assert await note("att") and await note("att")
    assert not await note("another")


async def test_change_invisible_time_of_a_fifo_message(fake: Cluster) -> None:
    c = fake
    await send_many(c, "FC", 2)
    batch = await pop(c, "FC", queue_id=0, order=True, attempt_id="a", invisible_ms=60_000)
    m0, m1 = batch.messages
    assert await ack(c, "FC", m1) == ResponseCode.SUCCESS
    code, new = await change_invisible(c, "FC", m0, 1_000)
    assert code == ResponseCode.SUCCESS and new is not None
    await advance(c, 2)
    again = await pop(c, "FC", queue_id=0, order=True, attempt_id="b")
    # Redelivery starts at the committed offset (the first unacked message) and keeps the order, so a
    # message acked out of order behind it comes again too, as upstream.
    assert again.bodies == [b"m0", b"m1"] and [m.order_count for m in again.messages] == [1, 1]


async def test_fifo_ack_wakes_a_held_orderly_pop(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "FW", 2)
    first = await pop(c, "FW", queue_id=0, order=True, attempt_id="a", max_nums=1)
    assert first.bodies == [b"m0"]
    held = asyncio.create_task(pop(c, "FW", queue_id=0, order=True, attempt_id="b", poll_ms=4000))
    assert c.b.pop is not None
    await until(lambda: c.b.pop is not None and c.b.pop.pop_polling.parked_count == 1)
    assert await ack(c, "FW", first.messages[0]) == ResponseCode.SUCCESS
    got = await asyncio.wait_for(held, 5)
    assert got.bodies == [b"m1"]


async def test_fifo_unblock_on_invisible_time_wakes_a_held_pop(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "FU", 1)
    await pop(c, "FU", queue_id=0, order=True, attempt_id="a", invisible_ms=300)
    held = await pop(c, "FU", queue_id=0, order=True, attempt_id="b", poll_ms=4000)
    assert held.bodies == [b"m0"] and held.messages[0].order_count == 1


async def test_order_info_survives_a_restart(make_cluster) -> None:  # type: ignore[no-untyped-def]
    from orbitmq.core.clock import FakeClock

    c: Cluster = await make_cluster(clock=FakeClock())
    await send_many(c, "FP", 2)
    first = await pop(c, "FP", queue_id=0, order=True, attempt_id="a", invisible_ms=30_000)
    await c.restart_broker()
    assert (await pop(c, "FP", queue_id=0, order=True, attempt_id="b")).code == ResponseCode.POLLING_TIMEOUT
    assert await ack(c, "FP", first.messages[0]) == ResponseCode.SUCCESS
    assert c.b.offsets.query_offset("G", "FP", 0) == 1
    await advance(c, 31)
    again = await pop(c, "FP", queue_id=0, order=True, attempt_id="c")
    assert again.bodies == [b"m1"] and again.messages[0].order_count == 1
