"""Pop and notification long polling, POLLING_INFO (pop-and-storage §1.13, S2): held requests are woken by
arrivals they cover (retry topic included), answered on time, bounded, and released with their connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.pop import NotificationResponseHeader, PollingInfoResponseHeader

from .conftest import Cluster, pop, send_many, until


def parked(c: Cluster) -> int:
    assert c.b.pop is not None
    return c.b.pop.pop_polling.parked_count


async def notification(c: Cluster, topic: str, group: str = "G", *, queue_id: int = -1, poll_ms: int = 0,
                       client: RemotingClient | None = None) -> tuple[int, NotificationResponseHeader]:  # fmt: skip
    r = await c.call(
        RequestCode.NOTIFICATION, consumerGroup=group, topic=topic, queueId=queue_id, pollTime=poll_ms,
        bornTime=c.b.clock.now_ms(), order=False, client=client,
    )  # fmt: skip
    return r.code, NotificationResponseHeader.from_command(r)


async def test_held_pop_is_woken_by_a_send(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "LPop", 1)
    assert (await pop(c, "LPop")).bodies == [b"m0"]
    held = asyncio.create_task(pop(c, "LPop", poll_ms=5000))
    await until(lambda: parked(c) == 1)
    r = await c.call(RequestCode.POLLING_INFO, consumerGroup="G", topic="LPop", queueId=-1)
    assert r.code == ResponseCode.SUCCESS and PollingInfoResponseHeader.from_command(r).polling_num == 1
    assert (await c.send("LPop", b"late", queue_id=2)).code == 0
    popped = await asyncio.wait_for(held, 5)
    assert popped.code == ResponseCode.SUCCESS and popped.bodies == [b"late"] and parked(c) == 0


async def test_held_pop_times_out_with_polling_timeout(cluster: Cluster) -> None:
    await send_many(cluster, "LPto", 1)
    await pop(cluster, "LPto")
    popped = await pop(cluster, "LPto", poll_ms=300)
    assert popped.code == ResponseCode.POLLING_TIMEOUT and popped.response.remark == "NO_MESSAGE_IN_QUEUE"
    assert popped.header.invisible_time == 60_000 and parked(cluster) == 0


async def test_other_tags_do_not_wake_a_filtered_pop(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "LPf", 1, tags="A")
    await pop(c, "LPf", exp="A")
    held = asyncio.create_task(pop(c, "LPf", exp="A", poll_ms=5000))
    await until(lambda: parked(c) == 1)
    assert (await c.send("LPf", b"b", tags="B")).code == 0
    await asyncio.sleep(0.05)  # a wrong wake-up would answer the pop (nothing found: it parks again)
    assert not held.done()
    assert (await c.send("LPf", b"a", tags="A")).code == 0
    assert (await asyncio.wait_for(held, 5)).bodies == [b"a"]


async def test_a_full_table_answers_polling_full(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "LPfull", 1)
    await pop(c, "LPfull")
    assert c.b.pop is not None
    c.b.pop.pop_polling.max_total = 1
    first = asyncio.create_task(pop(c, "LPfull", poll_ms=5000))
    await until(lambda: parked(c) == 1)
    second = await pop(c, "LPfull", poll_ms=5000)
    assert second.code == ResponseCode.POLLING_FULL
    assert (await c.send("LPfull", b"x")).code == 0
    assert (await asyncio.wait_for(first, 5)).code == ResponseCode.SUCCESS


async def test_retry_topic_arrival_wakes_the_pollers_of_the_original_topic(
    make_cluster: Callable[..., Awaitable[Cluster]],
) -> None:
    """V1 retry names (%RETRY%G_T) cannot be split back; the broker maps them (upstream #9632 is open)."""
    c = await make_cluster(revive_interval=50)
    assert c.b.pop is not None
    await send_many(c, "LPr", 2)
    popped = await pop(c, "LPr", invisible_ms=300)
    assert popped.bodies == [b"m0", b"m1"]
    # A held notification is told when the retry copy lands...
    code, header = await notification(c, "LPr", poll_ms=5000)
    assert code == ResponseCode.SUCCESS and header.has_msg
    retry = "%RETRY%G_LPr"
    assert c.b.store.max_offset_in_queue(retry, 0) >= 1
    # ...and a held pop is woken by it (m1's copy may land after the first pop answered).
    got = list((await pop(c, "LPr", poll_ms=5000)).messages)
    if len(got) < 2:
        got += (await pop(c, "LPr", poll_ms=5000)).messages
    assert sorted(m.body for m in got) == [b"m0", b"m1"]
    assert all(m.record.reconsume_times == 1 and m.extra.retry_kind == "1" for m in got)


async def test_notification(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "LPn", 1)
    assert (await notification(c, "LPn"))[1].has_msg
    await pop(c, "LPn")
    code, header = await notification(c, "LPn")
    assert code == ResponseCode.SUCCESS and not header.has_msg and not header.polling_full
    held = asyncio.create_task(notification(c, "LPn", queue_id=1, poll_ms=5000))
    assert c.b.pop is not None
    await until(lambda: c.b.pop is not None and c.b.pop.notification_polling.parked_count == 1)
    assert (await c.send("LPn", b"q0", queue_id=0)).code == 0  # another queue: not covered
    await asyncio.sleep(0.05)
    assert not held.done()
    assert (await c.send("LPn", b"q1", queue_id=1)).code == 0
    assert (await asyncio.wait_for(held, 5))[1].has_msg
    assert not (await notification(c, "LPn", queue_id=3, poll_ms=200))[1].has_msg
    c.b.pop.notification_polling.max_total = 1
    blocker = asyncio.create_task(notification(c, "LPn", queue_id=3, poll_ms=5000))
    await until(lambda: c.b.pop is not None and c.b.pop.notification_polling.parked_count == 1)
    code, header = await notification(c, "LPn", queue_id=3, poll_ms=5000)
    assert code == ResponseCode.SUCCESS and header.polling_full and not header.has_msg
    assert (await c.send("LPn", b"q3", queue_id=3)).code == 0
    assert (await asyncio.wait_for(blocker, 5))[1].has_msg
    r = await c.call(
        RequestCode.NOTIFICATION, consumerGroup="G", topic="LPn", queueId=9, pollTime=0, bornTime=0
    )
    assert r.code == ResponseCode.SYSTEM_ERROR


async def test_closing_the_connection_releases_its_held_pops(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "LPc", 1)
    await pop(c, "LPc")
    other = RemotingClient()
    held = asyncio.create_task(pop(c, "LPc", poll_ms=10_000, client=other))
    await until(lambda: parked(c) == 1)
    await other.close()
    await until(lambda: parked(c) == 0)
    held.cancel()
    await asyncio.gather(held, return_exceptions=True)


async def test_stopping_the_broker_answers_held_pops(cluster: Cluster) -> None:
    c = cluster
    await send_many(c, "LPs", 1)
    await pop(c, "LPs")
    held = asyncio.create_task(pop(c, "LPs", poll_ms=15_000))
    await until(lambda: parked(c) == 1)
    await c.b.stop()
    popped = await asyncio.wait_for(held, 5)
    assert popped.code == ResponseCode.POLLING_TIMEOUT
    c.broker = None


async def test_held_pop_and_notification_are_woken_by_an_offset_reset(fake: Cluster) -> None:
    """A reset back in time gives a held pop (or notification) messages again: it is answered now, not at its
    poll time (the broker's clock is fake and never reaches it)."""
    c = fake
    assert c.b.pop is not None
    await send_many(c, "LPr", 3, queue_id=0)
    assert (await pop(c, "LPr", queue_id=0)).bodies == [b"m0", b"m1", b"m2"]
    held = asyncio.create_task(pop(c, "LPr", queue_id=0, poll_ms=20_000))
    await until(lambda: parked(c) == 1)
    c.b.offsets.assign_reset_offset("G", "LPr", 0, 1)
    popped = await asyncio.wait_for(held, 5)
    assert popped.code == ResponseCode.SUCCESS and popped.bodies == [b"m1", b"m2"]

    noticed = asyncio.create_task(notification(c, "LPr", queue_id=0, poll_ms=20_000))
    await until(lambda: c.b.pop is not None and c.b.pop.notification_polling.parked_count == 1)
    c.b.offsets.assign_reset_offset("G", "LPr", 0, 2)
    code, header = await asyncio.wait_for(noticed, 5)
    assert code == ResponseCode.SUCCESS and header.has_msg
