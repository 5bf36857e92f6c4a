"""Held pull requests (RocketMQ ``PullRequestHoldService``): long polling for PULL_MESSAGE.

A pull that finds nothing new and carries the SUSPEND flag is parked here instead of being answered. It is
woken when a matching record reaches the consume queue of its topic and queue (the store's dispatch
listener calls :meth:`PullRequestHoldService.notify_message_arriving`), when its hold time has passed (the
sweep task), when its connection closes, or when the service stops. The pull handler then runs the pull
again, without suspending, and answers. Only the handler's task waits; nothing else on the connection does.

The table is bounded (``LONG_POLL_REQUESTS_MAX``): a pull that finds it full is answered at once.
The decision "does this record wake this request" is the pure function :func:`wakes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from dataclasses import dataclass, field

from orbitmq.core.clock import Clock
from orbitmq.core.limits import LONG_POLL_REQUESTS_MAX
from orbitmq.core.metrics import LATENCY_BUCKETS_S, Histogram, Recorder
from orbitmq.core.service import Service
from orbitmq.store.api import DispatchRequest, RecordFilter, TagFilter

__all__ = ["HOLD_MS_MAX", "HeldPull", "PullRequestHoldService", "WakeReason", "sleep_unless_woken", "wakes"]

log = logging.getLogger("orbitmq.broker.longpoll")

#: A pull is never held longer than this, whatever ``suspendTimeoutMillis`` asks: ali-ons closes its whole
#: socket when a pull is not answered within 30 s (remoting-protocol §1.8), clients ask for 15 s.
HOLD_MS_MAX = 20_000


async def sleep_unless_woken(clock: Clock, wakeup: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` on the injected clock, cut short when ``wakeup`` is set (then cleared).

    Services here sleep on their :class:`Clock` (not ``asyncio.sleep``), so a test's FakeClock drives them.
    """
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    woken = asyncio.ensure_future(wakeup.wait())
    try:
        await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, woken):
            task.cancel()
        await asyncio.gather(sleeper, woken, return_exceptions=True)
    wakeup.clear()


class WakeReason:
    """Why a held pull was released (the value its future resolves to)."""

    MESSAGE = "message"
    TIMEOUT = "timeout"
    CLOSED = "closed"
    SHUTDOWN = "shutdown"


@dataclass(eq=False, slots=True)
class HeldPull:
    topic: str
    queue_id: int
    offset: int  # the queue offset the pull wants to read from
    deadline: float  # clock.monotonic() after which the pull is answered anyway
    conn_id: int
    tag_filter: TagFilter | None
    record_filter: RecordFilter | None
    future: asyncio.Future[str] = field(repr=False)
    #: clock.monotonic() when a message released it (for the wake-latency histogram).
    woken_at: float | None = None

    def release(self, reason: str) -> bool:
        if self.future.done():
            return False
        self.future.set_result(reason)
        return True


def wakes(held: HeldPull, arrived: DispatchRequest) -> bool:
    """True when ``arrived`` is a record the held pull would read (Java's ``notifyMessageArriving``):
    same queue, at or after the requested offset, and passing the subscription's tag and record filters."""
    if arrived.topic != held.topic or arrived.queue_id != held.queue_id or arrived.queue_offset < held.offset:
        return False
    if held.tag_filter is not None and not held.tag_filter(arrived.tags_code):
        return False
    return held.record_filter is None or held.record_filter(arrived.properties)


class PullRequestHoldService(Service):
    """The table of held pulls plus the task that answers them when their time is up."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_requests: int = LONG_POLL_REQUESTS_MAX,
        check_interval_s: float = 1.0,
    ) -> None:
        super().__init__("PullRequestHoldService")
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}")
        self.clock = clock
        self.max_requests = max_requests
        self.check_interval_s = check_interval_s
        self._by_queue: dict[tuple[str, int], list[HeldPull]] = {}
        self._deadlines: list[tuple[float, int, HeldPull]] = []
        self._seq = itertools.count()
        self._count = 0
        #: Pulls refused because the table was full (a metrics exporter reads it).
        self.refused = 0
        #: Pulls parked so far, and how many were released for each :class:`WakeReason`.
        self.holds = 0
        self.releases: dict[str, int] = {}
        #: Seconds from a matching message's arrival until its held pull is resumed (event-loop delay).
        self.wake_latency: Recorder = Histogram(LATENCY_BUCKETS_S)

    @property
    def held_count(self) -> int:
        return self._count

    # -- the table -------------------------------------------------------------------------------------
    def hold(
        self,
        topic: str,
        queue_id: int,
        offset: int,
        hold_ms: int,
        conn_id: int,
        tag_filter: TagFilter | None = None,
        record_filter: RecordFilter | None = None,
    ) -> asyncio.Future[str] | None:
        """Park a pull for at most ``hold_ms`` (capped at :data:`HOLD_MS_MAX`); None when it cannot be
        held (table full or service not running): the caller answers at once."""
        if not self.running or self._count >= self.max_requests:
            if self.running:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:  # a full table refuses a lot: do not flood
                    log.warning(
                        "long-poll table full (%d held): answered %d pulls at once", self._count, self.refused
                    )
            return None
        hold_s = max(0, min(hold_ms, HOLD_MS_MAX)) / 1000
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        held = HeldPull(
            topic, queue_id, offset, self.clock.monotonic() + hold_s, conn_id, tag_filter, record_filter, fut
        )
        self._by_queue.setdefault((topic, queue_id), []).append(held)
        earliest = self._deadlines[0][0] if self._deadlines else None
        heapq.heappush(self._deadlines, (held.deadline, next(self._seq), held))
        self._count += 1
        self.holds += 1
        fut.add_done_callback(lambda _f: self._forget(held))
        if earliest is None or held.deadline < earliest:
            self.wakeup()  # the sweep may be sleeping past this new deadline
        return fut

    def _forget(self, held: HeldPull) -> None:
        # Runs as the future's first callback, one loop step before the pull handler resumes.
        reason = held.future.result() if not held.future.cancelled() else WakeReason.SHUTDOWN
        self.releases[reason] = self.releases.get(reason, 0) + 1
        if held.woken_at is not None:
            self.wake_latency.observe(self.clock.monotonic() - held.woken_at)
        key = (held.topic, held.queue_id)
        queue = self._by_queue.get(key)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(held)
            self._count -= 1
        if not queue:
            del self._by_queue[key]

    def notify_message_arriving(self, arrived: DispatchRequest) -> int:
        """A record reached a consume queue: release the pulls it satisfies; how many were released."""
        queue = self._by_queue.get((arrived.topic, arrived.queue_id))
        if not queue:
            return 0
        released = 0
        for held in list(queue):
            try:
                matched = wakes(held, arrived)
            except Exception:
                log.exception(
                    "pull filter failed on %s q%d; waking the pull", arrived.topic, arrived.queue_id
                )
                matched = True
            if matched and held.release(WakeReason.MESSAGE):
                held.woken_at = self.clock.monotonic()
                released += 1
        return released

    def wake_queue(self, topic: str, queue_id: int) -> int:
        """Release every pull held on the queue now (its offsets were reset: they re-check at once)."""
        return sum(h.release(WakeReason.MESSAGE) for h in list(self._by_queue.get((topic, queue_id), ())))

    def drop_connection(self, conn_id: int) -> int:
        """The connection closed: release its pulls (their answers will be dropped)."""
        mine = [h for q in self._by_queue.values() for h in q if h.conn_id == conn_id]
        return sum(h.release(WakeReason.CLOSED) for h in mine)

    def expire(self) -> int:
        """Release every pull whose deadline has passed; how many."""
        now = self.clock.monotonic()
        released = 0
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, held = heapq.heappop(self._deadlines)
            released += held.release(WakeReason.TIMEOUT)
        return released

    # -- the sweep task --------------------------------------------------------------------------------
    async def run(self) -> None:
        while not self.stopping:
            self.expire()
            while self._deadlines and self._deadlines[0][2].future.done():
                heapq.heappop(self._deadlines)  # released early: drop its deadline entry
            delay = self.check_interval_s
            if self._deadlines:
                delay = min(delay, max(0.0, self._deadlines[0][0] - self.clock.monotonic()))
            await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless_woken(self.clock, self._wakeup, seconds)

    async def on_stop(self) -> None:
        """Answer every held pull now (a stopping broker must not leave clients waiting 15 s)."""
        for held in [h for q in self._by_queue.values() for h in q]:
            held.release(WakeReason.SHUTDOWN)
        self._deadlines.clear()

    def on_failed(self, exc: BaseException) -> None:
        for held in [h for q in self._by_queue.values() for h in q]:
            held.release(WakeReason.SHUTDOWN)
