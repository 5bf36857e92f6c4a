"""Held pop and notification requests (upstream ``PopLongPollingService``, pop-and-storage §1.13).

A pop (or NOTIFICATION) that finds nothing and carries a ``pollTime`` is parked here under
``topic@group@queueId`` (queue -1 for a request covering every queue). It is woken when a message that
its filter accepts arrives in a queue it covers, including the group's pop retry topic (mapped back to the
original topic by name, so V1 retry topics wake pollers too, upstream #9632), when its time is up, when
its connection closes or when the broker stops. The handler then pops (or checks) again.

One arrival wakes one request per key (a pop that then finds backlog wakes the next one), the oldest for
pops and the newest for notifications (``notifyLast``, upstream #7835). The table is bounded per key
(``popPollingSize``) and in all (``maxPopPollingSize``): a request that does not fit is answered at once
with POLLING_FULL. The parked count is kept exact on every removal path (upstream #4072).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from orbitmq.broker.longpoll import WakeReason, sleep_unless_woken
from orbitmq.core.clock import Clock
from orbitmq.core.service import Service
from orbitmq.store.api import RecordFilter, TagFilter

__all__ = ["POP_POLL_MS_MAX", "SCHEDULED_WAKES_MAX", "PollKey", "PopLongPollingService", "PopWaiter"]

log = logging.getLogger("orbitmq.broker.pop.polling")

#: A pop or notification is never held longer than this, whatever ``pollTime`` asks.
POP_POLL_MS_MAX = 120_000
#: Scheduled wake-ups kept (FIFO unblock times); past it a held FIFO pop waits for its own poll time instead.
SCHEDULED_WAKES_MAX = 100_000
#: (topic, group, queue id or -1)
PollKey = tuple[str, str, int]


@dataclass(eq=False, slots=True)
class PopWaiter:
    key: PollKey
    deadline: float  # clock.monotonic()
    conn_id: int
    tag_filter: TagFilter | None
    record_filter: RecordFilter | None
    future: asyncio.Future[str] = field(repr=False)

    def accepts(self, tags_code: int | None, properties: Mapping[str, str] | None) -> bool:
        """Would the arrival interest this request? Unknown tags / properties: assume yes."""
        if tags_code is not None and self.tag_filter is not None and not self.tag_filter(tags_code):
            return False
        if properties is not None and self.record_filter is not None:
            return bool(self.record_filter(dict(properties)))
        return True

    def release(self, reason: str) -> bool:
        if self.future.done():
            return False
        self.future.set_result(reason)
        return True


class PopLongPollingService(Service):
    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        max_total: int = 100_000,
        max_per_key: int = 1024,
        notify_last: bool = False,
        check_interval_s: float = 1.0,
    ) -> None:
        super().__init__(name)
        if max_total < 1 or max_per_key < 1:
            raise ValueError("polling table bounds must be positive")
        self.clock = clock
        self.max_total = max_total
        self.max_per_key = max_per_key
        self.notify_last = notify_last
        self.check_interval_s = check_interval_s
        self._by_key: dict[PollKey, list[PopWaiter]] = {}
        self._groups_of_topic: dict[str, dict[str, int]] = {}  # topic → group → parked count
        self._deadlines: list[tuple[float, int, PopWaiter]] = []
        #: Wake-ups due later (a FIFO queue unblocks when its batch becomes visible again).
        self._scheduled: list[tuple[float, int, PollKey]] = []
        self._seq = itertools.count()
        self._count = 0
        # -- counters --
        self.parked = 0
        self.woken = 0
        self.timed_out = 0
        self.refused = 0  # answered POLLING_FULL

    @property
    def parked_count(self) -> int:
        return self._count

    def polling_num(self, key: PollKey) -> int:
        return len(self._by_key.get(key, ()))

    # -- the table -------------------------------------------------------------------------------------
    def park(
        self,
        key: PollKey,
        hold_ms: int,
        conn_id: int,
        tag_filter: TagFilter | None = None,
        record_filter: RecordFilter | None = None,
    ) -> asyncio.Future[str] | None:
        """Park a request for at most ``hold_ms``; None when the table (or the key) is full, or the
        service is not running: the caller answers POLLING_FULL."""
        waiters = self._by_key.get(key)
        if (
            not self.running
            or self._count >= self.max_total
            or (waiters and len(waiters) >= self.max_per_key)
        ):
            if self.running:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    log.warning(
                        "%s full (%d held): %d requests refused", self.name, self._count, self.refused
                    )
            return None
        hold_s = max(0, min(hold_ms, POP_POLL_MS_MAX)) / 1000
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiter = PopWaiter(key, self.clock.monotonic() + hold_s, conn_id, tag_filter, record_filter, fut)
        self._by_key.setdefault(key, []).append(waiter)
        groups = self._groups_of_topic.setdefault(key[0], {})
        groups[key[1]] = groups.get(key[1], 0) + 1
        earliest = self._deadlines[0][0] if self._deadlines else None
        heapq.heappush(self._deadlines, (waiter.deadline, next(self._seq), waiter))
        self._count += 1
        self.parked += 1
        fut.add_done_callback(lambda _f: self._forget(waiter))
        if earliest is None or waiter.deadline < earliest:
            self.wakeup()
        return fut

    def _forget(self, waiter: PopWaiter) -> None:
        waiters = self._by_key.get(waiter.key)
        if waiters is None or waiter not in waiters:
            return
        waiters.remove(waiter)
        self._count -= 1
        if not waiters:
            del self._by_key[waiter.key]
        topic, group, _ = waiter.key
        groups = self._groups_of_topic.get(topic)
        if groups is not None:
            groups[group] -= 1
            if groups[group] <= 0:
                del groups[group]
            if not groups:
                del self._groups_of_topic[topic]

    # -- waking ----------------------------------------------------------------------------------------
    def wake_one(
        self,
        key: PollKey,
        tags_code: int | None = None,
        properties: Mapping[str, str] | None = None,
        reason: str = WakeReason.MESSAGE,
    ) -> bool:
        """Wake the oldest (``notify_last``: newest) request of ``key`` that the arrival interests."""
        waiters = self._by_key.get(key)
        if not waiters:
            return False
        order = reversed(waiters) if self.notify_last else iter(waiters)
        for waiter in list(order):
            try:
                interested = waiter.accepts(tags_code, properties)
            except Exception:
                log.exception("filter of a held pop failed; waking it")
                interested = True
            if interested and self._release(waiter, reason):
                self.woken += 1
                return True
        return False

    def _release(self, waiter: PopWaiter, reason: str) -> bool:
        """Answer ``waiter`` and take it out of the table now (counts stay exact for the caller)."""
        released = waiter.release(reason)
        self._forget(waiter)
        return released

    def groups_of(self, topic: str) -> list[str]:
        return list(self._groups_of_topic.get(topic, ()))

    def keys_of(self, topic: str, group: str) -> list[PollKey]:
        return [k for k in self._by_key if k[0] == topic and k[1] == group]

    def notify_arrival(
        self,
        topic: str,
        group: str,
        queue_id: int | None,
        tags_code: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> bool:
        """A message for ``group`` arrived in ``topic`` (queue ``queue_id``; None: a queue of the group's
        pop retry topic, which every request of the group covers): wake one request that covers it."""
        if self.wake_one((topic, group, -1), tags_code, properties):
            return True
        if queue_id is not None:
            return self.wake_one((topic, group, queue_id), tags_code, properties)
        return any(self.wake_one(k, tags_code, properties) for k in self.keys_of(topic, group))

    def wake_later(self, delay_s: float, topic: str, group: str, queue_id: int) -> None:
        """In ``delay_s`` seconds, wake a request covering (topic, group, queue) as an arrival would."""
        if len(self._scheduled) >= SCHEDULED_WAKES_MAX:
            return
        when = self.clock.monotonic() + max(0.0, delay_s)
        earliest = self._scheduled[0][0] if self._scheduled else None
        heapq.heappush(self._scheduled, (when, next(self._seq), (topic, group, queue_id)))
        if earliest is None or when < earliest:
            self.wakeup()

    def _run_scheduled(self) -> None:
        now = self.clock.monotonic()
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, (topic, group, queue_id) = heapq.heappop(self._scheduled)
            if group in self._groups_of_topic.get(topic, ()):
                self.notify_arrival(topic, group, queue_id)

    def drop_connection(self, conn_id: int) -> int:
        mine = [w for ws in self._by_key.values() for w in ws if w.conn_id == conn_id]
        return sum(self._release(w, WakeReason.CLOSED) for w in mine)

    def expire(self) -> int:
        now = self.clock.monotonic()
        released = 0
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, waiter = heapq.heappop(self._deadlines)
            if self._release(waiter, WakeReason.TIMEOUT):
                released += 1
                self.timed_out += 1
        return released

    # -- the sweep task --------------------------------------------------------------------------------
    async def run(self) -> None:
        while not self.stopping:
            self.expire()
            self._run_scheduled()
            while self._deadlines and self._deadlines[0][2].future.done():
                heapq.heappop(self._deadlines)
            delay = self.check_interval_s
            for heap in (self._deadlines, self._scheduled):
                if heap:
                    delay = min(delay, max(0.0, heap[0][0] - self.clock.monotonic()))
            await sleep_unless_woken(self.clock, self._wakeup, delay)

    def _release_all(self) -> None:
        for waiter in [w for ws in self._by_key.values() for w in ws]:
            self._release(waiter, WakeReason.SHUTDOWN)
        self._deadlines.clear()
        self._scheduled.clear()

    async def on_stop(self) -> None:
        self._release_all()

    def on_failed(self, exc: BaseException) -> None:
        self._release_all()
