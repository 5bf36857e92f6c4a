"""The pop long-polling table (orbitmq.broker.pop.polling): bounds, wake order, exact counts."""

from __future__ import annotations

import asyncio

from orbitmq.broker.longpoll import WakeReason
from orbitmq.broker.pop.polling import PopLongPollingService
from orbitmq.core.clock import FakeClock

KEY = ("T", "G", -1)


async def started(**kw: object) -> tuple[PopLongPollingService, FakeClock]:
    clock = FakeClock()
    svc = PopLongPollingService("test", clock, **kw)  # type: ignore[arg-type]
    await svc.start()
    return svc, clock


async def test_bounded_per_key_and_in_all() -> None:
    svc, _ = await started(max_total=3, max_per_key=2)
    assert svc.park(KEY, 1000, 1) is not None and svc.park(KEY, 1000, 1) is not None
    assert svc.park(KEY, 1000, 1) is None  # key full
    assert svc.park(("T", "G", 0), 1000, 1) is not None
    assert svc.park(("T", "H", 0), 1000, 1) is None  # table full
    assert svc.refused == 2 and svc.parked_count == 3 and svc.polling_num(KEY) == 2
    await svc.stop()
    assert svc.parked_count == 0


async def test_one_arrival_wakes_one_request_oldest_first_or_newest_for_notifications() -> None:
    svc, _ = await started()
    first, second = svc.park(KEY, 1000, 1), svc.park(KEY, 1000, 1)
    assert first is not None and second is not None
    assert svc.notify_arrival("T", "G", 0)
    await asyncio.sleep(0)
    assert first.done() and not second.done() and svc.parked_count == 1
    await svc.stop()
    note, _ = await started(notify_last=True)
    a, b = note.park(KEY, 1000, 1), note.park(KEY, 1000, 1)
    assert a is not None and b is not None
    assert note.notify_arrival("T", "G", 0)
    assert b.done() and not a.done()
    await note.stop()


async def test_filters_queues_and_groups() -> None:
    svc, _ = await started()
    tagged = svc.park(("T", "G", 2), 1000, 1, tag_filter=lambda code: code == 7)
    assert tagged is not None
    assert not svc.notify_arrival("T", "G", 1, 7)  # another queue
    assert not svc.notify_arrival("T", "G", 2, 8)  # another tag
    assert not svc.notify_arrival("T", "H", 2, 7)  # another group
    assert svc.groups_of("T") == ["G"]
    assert svc.notify_arrival("T", "G", None, 7)  # a retry-topic arrival covers every queue of the group
    assert tagged.result() == WakeReason.MESSAGE and svc.groups_of("T") == []
    await svc.stop()


async def test_timeouts_and_closed_connections_keep_the_count_exact() -> None:
    svc, clock = await started()
    late = svc.park(KEY, 500, 1)
    mine = svc.park(KEY, 5000, 2)
    assert late is not None and mine is not None
    await clock.advance(0.6)
    for _ in range(5):
        await asyncio.sleep(0)
    assert late.result() == WakeReason.TIMEOUT and svc.timed_out == 1
    assert svc.drop_connection(2) == 1 and mine.result() == WakeReason.CLOSED
    assert svc.parked_count == 0 and svc.polling_num(KEY) == 0
    await svc.stop()


async def test_scheduled_wake_up_for_an_unblocking_fifo_queue() -> None:
    svc, clock = await started()
    held = svc.park(("T", "G", 0), 60_000, 1)
    assert held is not None
    svc.wake_later(2.0, "T", "G", 0)
    await clock.advance(1.0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert not held.done()
    await clock.advance(1.5)
    for _ in range(5):
        await asyncio.sleep(0)
    assert held.result() == WakeReason.MESSAGE
    await svc.stop()
