"""TimerMessageService: delivers parked timed messages at their time, exactly once across restarts.

Enqueue: the store's dispatch listener hands over every record that reaches the timer topic's consume
queue (``rmq_sys_wheel_timer`` queue 0) with its queue offset and ``TIMER_OUT_MS``; the service adds it to
the :class:`TimerIndex` (8 bytes, no body). Under SYNC_FLUSH the store dispatches only durable records, so
nothing that a crash could take back is ever delivered.

Delivery: the loop takes the slots whose start has come, keeps them sorted by (delivery time, queue
offset), and delivers every message whose time has come in batches that are a prefix of that order: it
reads the records from the CommitLog, turns each into its real-topic message (:func:`timer_timeup`) and
stores the batch (one ``put_messages`` per real queue, concurrently). After a batch completes the sweep
cursor moves to its last message. A message parked after the sweep passed its time (sent with a very short
delay, or while a backlog was being delivered) is *late*: it is delivered with the next batch and listed
in the marker until then. A failed put leaves its messages pending as late ones, retried after a pause.

Restart: :class:`TimerCheckpointManager` persists the marker every ``timerFlushIntervalMs`` and at stop.
On start the service reads the timer queue from the marker's ``scanOffset`` and re-adds every message the
marker does not count as delivered. After a clean stop the marker is exact. After a crash, deliveries made
since the last marker are found again before they are repeated: a message that looks pending and was due
by the restart is a *suspect*, and is skipped if the key index already holds its delivered copy (same
topic, UNIQ_KEY and TIMER_OUT_MS, with TIMER_DEQUEUE_MS, stored since the marker). So a message is
delivered once whether the broker stops before or after its time; only with ``messageIndexEnable=false``
can a crash repeat a delivery (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

from orbitmq.broker.longpoll import sleep_unless_woken
from orbitmq.broker.timer.index import Due, TimerIndex
from orbitmq.broker.timer.message import TIMER_DEQUEUE_MS, TIMER_TOPIC, timer_timeup
from orbitmq.broker.timer.progress import TimerCheckpoint, TimerCheckpointManager
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ProtocolError
from orbitmq.core.service import Service
from orbitmq.protocol.record import (
    MessageRecord,
    Prop,
    record_properties,
    record_store_timestamp,
)
from orbitmq.store.api import DispatchRequest, GetStatus, MessageStore, MessageToStore, PutStatus

__all__ = ["TimerMessageService", "TimerStats"]

log = logging.getLogger("orbitmq.broker.timer")

#: Messages delivered per batch (one prefix of the delivery order).
BATCH_MAX = 1024
#: Messages per ``put_messages`` call within a batch.
PUT_CHUNK = 256
#: Records read per store read while rebuilding the index.
_REBUILD_READ = 1024
#: A failed put is retried after this pause.
_RETRY_AFTER_S = 1.0
#: The key-index window for suspects starts this long before the marker was written (puts in flight).
_SUSPECT_SLACK_MS = 60_000
_READ_BYTES_MAX = 64 * 1024 * 1024
_NEVER = 2**63 - 1
#: The loop sleeps at least this long when nothing is due yet: messages due within it go out together
#: (one put per real queue for many messages instead of a few), at the cost of this much lateness at most.
_MIN_SLEEP_S = 0.010


@dataclass(slots=True)
class TimerStats:
    """Counters the metrics exporter reads."""

    parked: int = 0  # messages seen arriving in the timer queue
    delivered: int = 0  # stored in their real topic
    rebuilt: int = 0  # pending messages re-added from the timer queue at start
    duplicates_skipped: int = 0  # suspects whose delivered copy was found after a crash
    dropped: int = 0  # unreadable or without a real queue (logged)
    put_failures: int = 0  # failed puts (retried)


def _deliver_ms(props: dict[str, str], fallback: int) -> int:
    try:
        return int(props[Prop.TIMER_OUT_MS])
    except (KeyError, ValueError):
        return fallback  # not a parked message: deliver it at once (and let timer_timeup judge it)


class TimerMessageService(Service):
    def __init__(
        self,
        store: MessageStore,
        checkpoints: TimerCheckpointManager,
        clock: Clock,
        *,
        precision_ms: int = 1000,
        flush_interval_ms: int = 1000,
    ) -> None:
        super().__init__("TimerMessageService")
        self.store = store
        self.checkpoints = checkpoints
        self.clock = clock
        self.flush_interval_ms = flush_interval_ms
        self.index = TimerIndex(precision_ms)
        self.stats = TimerStats()
        self._ready: list[Due] = []  # taken from the index, sorted, not yet delivered
        self._ready_pos = 0
        self._late: set[int] = set()
        self._taken: tuple[int, int] = (0, -1)  # last message taken for delivery (in flight or done)
        self._done: tuple[int, int] = (0, -1)  # the sweep cursor: last message of the last finished batch
        self._enqueue_start = 0  # timer queue offset where the dispatch feed begins
        self._enqueue_offset = 0  # next timer queue offset expected from the feed
        self._enqueue_phy = 0  # CommitLog offset past the last timer record seen
        self._suspects: set[int] = set()
        self._suspects_since_ms = 0
        self._copies_used: dict[tuple[str, str, str], int] = {}
        self._next_wake_ms: int | None = None
        self._rebuilt = False
        self._finished = False
        self._warned_no_index = False
        self._persist_lock = asyncio.Lock()  # one marker write at a time (they share a temp file)

    @property
    def pending(self) -> int:
        return len(self.index)

    # -- lifecycle -------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        await asyncio.to_thread(self.checkpoints.load)
        cp = self.checkpoints.checkpoint
        self._taken = self._done = cp.sweep
        end = self._enqueue_start = self._enqueue_offset = self.store.max_offset_in_queue(TIMER_TOPIC, 0)
        # Everything before the feed's start is known once the rebuild has run: the marker's E moves past it.
        last = self.store.get_messages(TIMER_TOPIC, 0, end - 1, 1) if end > 0 else None
        last_phy = int.from_bytes(last.buffers[0][28:36], "big", signed=True) if last and last.buffers else -1
        self._enqueue_phy = max(cp.enqueue_phy, last_phy + 1)

    async def run(self) -> None:
        await self._rebuild()
        if self.stopping:
            return
        self._rebuilt = True
        await self._persist(clean=False)
        last_persist = self.clock.monotonic()
        while not self.stopping:
            now = self.clock.now_ms()
            batch = self._take_due(now)
            if batch:
                if not await self._deliver(batch):
                    await sleep_unless_woken(self.clock, self._wakeup, _RETRY_AFTER_S)
            else:
                await sleep_unless_woken(self.clock, self._wakeup, self._idle_seconds(now))
            if (self.clock.monotonic() - last_persist) * 1000 >= self.flush_interval_ms:
                last_persist = self.clock.monotonic()
                await self._persist_quietly()
        self._finished = True

    async def on_stop(self) -> None:
        if self._rebuilt:
            await self._persist(clean=self._finished)

    # -- enqueue ---------------------------------------------------------------------------------------
    def on_dispatch(self, req: DispatchRequest) -> None:
        """Store dispatch listener: a record reached a consume queue."""
        if req.topic != TIMER_TOPIC or req.queue_id != 0 or req.queue_offset < self._enqueue_start:
            return
        deliver_ms = _deliver_ms(req.properties, req.store_timestamp)
        self._add(deliver_ms, req.physical_offset, req.queue_offset)
        self._enqueue_offset = max(self._enqueue_offset, req.queue_offset + 1)
        self._enqueue_phy = max(self._enqueue_phy, req.physical_offset + 1)
        self.stats.parked += 1
        if self._next_wake_ms is not None and deliver_ms < self._next_wake_ms:
            self._next_wake_ms = None
            self.wakeup()

    def _add(self, deliver_ms: int, phy: int, queue_offset: int) -> None:
        self.index.add(deliver_ms, phy, queue_offset)
        if (deliver_ms, phy) <= self._taken:
            self._late.add(phy)

    async def _rebuild(self) -> None:
        """Re-add what the marker does not count as delivered, from its scan offset to the feed's start."""
        cp = self.checkpoints.checkpoint
        late = set(cp.late)
        start_ms = self.clock.now_ms()
        suspect = not cp.clean
        self._suspects_since_ms = cp.check_since_ms
        offset = max(cp.scan_queue_offset, self.store.min_offset_in_queue(TIMER_TOPIC, 0))
        end = self._enqueue_start
        while offset < end and not self.stopping:
            res = self.store.get_messages(TIMER_TOPIC, 0, offset, _REBUILD_READ, max_bytes=_READ_BYTES_MAX)
            if res.status is not GetStatus.FOUND:
                if res.next_begin_offset > offset:
                    log.warning("timer rebuild: offsets %d..%d unreadable", offset, res.next_begin_offset)
                    offset = res.next_begin_offset
                    continue
                break
            for view, qo in zip(res.buffers, res.queue_offsets, strict=True):
                if qo >= end:
                    break
                try:
                    deliver_ms = _deliver_ms(record_properties(view), record_store_timestamp(view))
                except ProtocolError as exc:
                    log.error("timer rebuild: unreadable record at queue offset %d skipped: %s", qo, exc)
                    continue
                phy = int.from_bytes(view[28:36], "big", signed=True)  # PHYSICALOFFSET (protocol.record)
                if cp.delivered(deliver_ms, phy, late):
                    continue
                self._add(deliver_ms, phy, qo)
                self.stats.rebuilt += 1
                if suspect and deliver_ms <= start_ms:
                    self._suspects.add(phy)
            offset = res.next_begin_offset
            await asyncio.sleep(0)  # millions of records: let the broker serve meanwhile
        log.info("timer: %d pending messages rebuilt from queue offset %d (%d to check for a delivery made "
                 "before a crash)", self.stats.rebuilt, cp.scan_queue_offset, len(self._suspects))  # fmt: skip

    # -- delivery --------------------------------------------------------------------------------------
    def _take_due(self, now_ms: int) -> list[Due]:
        """The next batch: a prefix of the pending messages in delivery order, all due by ``now_ms``."""
        taken: list[Due] = []
        while (slot := self.index.earliest_slot()) is not None and self.index.slot_start_ms(slot) <= now_ms:
            taken.extend(self.index.take_slot(slot))
        if taken:
            rest = self._ready[self._ready_pos :]
            self._ready = sorted(rest + taken) if rest else taken
            self._ready_pos = 0
        ready, pos = self._ready, self._ready_pos
        end, limit = pos, min(len(ready), pos + BATCH_MAX)
        while end < limit and ready[end].deliver_ms <= now_ms:
            end += 1
        batch = ready[pos:end]
        self._ready_pos = end
        if end == len(ready):
            self._ready, self._ready_pos = [], 0
        if batch:
            self._taken = max(self._taken, batch[-1])
        return batch

    def _idle_seconds(self, now_ms: int) -> float:
        wake: int | None = None
        if self._ready_pos < len(self._ready):
            wake = self._ready[self._ready_pos].deliver_ms
        slot = self.index.earliest_slot()
        if slot is not None:
            start = self.index.slot_start_ms(slot)
            wake = start if wake is None else min(wake, start)
        interval = self.flush_interval_ms / 1000
        self._next_wake_ms = wake if wake is not None else _NEVER  # any arrival wakes an idle loop
        if wake is None:
            return interval
        return min(interval, max(_MIN_SLEEP_S, (wake - now_ms) / 1000))

    async def _deliver(self, batch: list[Due]) -> bool:
        """Store every message of ``batch`` in its real topic; False when some put failed (retried later)."""
        now = self.clock.now_ms()
        groups: dict[tuple[str, int], list[tuple[Due, MessageToStore]]] = defaultdict(list)
        for due in batch:
            msg = self._real_message(due, self.store.look_message_by_offset(due.phy), now)
            if msg is not None:
                groups[(msg.topic, msg.queue_id)].append((due, msg))
        chunks = [
            items[i : i + PUT_CHUNK] for items in groups.values() for i in range(0, len(items), PUT_CHUNK)
        ]
        results = await asyncio.gather(*(self.store.put_messages([m for _, m in c]) for c in chunks))
        ok = True
        for chunk, result in zip(chunks, results, strict=True):
            if result.status in (PutStatus.PUT_OK, PutStatus.FLUSH_DISK_TIMEOUT):
                for due, _ in chunk:
                    self._finish(due.phy)
                self.stats.delivered += len(chunk)
            elif result.status in (PutStatus.MESSAGE_ILLEGAL, PutStatus.PROPERTIES_SIZE_EXCEEDED):
                log.error("timer: %d messages for %s refused by the store (%s); dropped",
                          len(chunk), chunk[0][1].topic, result.remark)  # fmt: skip
                for due, _ in chunk:
                    self._finish(due.phy)
                self.stats.dropped += len(chunk)
            else:
                ok = False
                self.stats.put_failures += len(chunk)
                log.warning("timer: delivering %d messages to %s failed (%s %s); retrying",
                            len(chunk), chunk[0][1].topic, result.status.value, result.remark)  # fmt: skip
                dues = [due for due, _ in chunk]
                self._late.update(d.phy for d in dues)
                self.index.restore(dues)
        self._done = max(self._done, batch[-1])
        return ok

    def _finish(self, phy: int) -> None:
        self.index.done(phy)
        self._late.discard(phy)
        self._suspects.discard(phy)

    def _real_message(self, due: Due, rec: MessageRecord | None, now_ms: int) -> MessageToStore | None:
        """The real-topic message for ``due``; None (and the message finished) when there is nothing to
        deliver: unreadable, without a real queue, or a suspect already delivered before a crash."""
        phy = due.phy
        msg = timer_timeup(rec, now_ms) if rec is not None and rec.topic == TIMER_TOPIC else None
        if rec is None or msg is None:
            if rec is not None:
                log.error("timer: record at CommitLog offset %d names no REAL_TOPIC/REAL_QID; dropped", phy)
            else:
                log.error("timer: record at CommitLog offset %d is gone or unreadable; dropped", phy)
            self._finish(phy)
            self.stats.dropped += 1
            return None
        if phy in self._suspects and self._delivered_before_crash(rec, msg):
            log.info("timer: CommitLog offset %d was delivered before the restart; not again", phy)
            self._finish(phy)
            self.stats.duplicates_skipped += 1
            return None
        return msg

    def _delivered_before_crash(self, rec: MessageRecord, msg: MessageToStore) -> bool:
        uniq = rec.uniq_key
        out_ms = rec.properties.get(Prop.TIMER_OUT_MS, "")
        if not uniq:
            return False
        if not self.store.config.message_index_enable:
            if not self._warned_no_index:
                self._warned_no_index = True
                log.warning("timer: messageIndexEnable=false, deliveries made just before a crash may repeat")
            return False
        found = self.store.query_message(msg.topic, uniq, 64, self._suspects_since_ms)
        copies = sum(
            1
            for r in found
            if r.topic == msg.topic
            and r.properties.get(Prop.TIMER_OUT_MS) == out_ms
            and TIMER_DEQUEUE_MS in r.properties
        )
        key = (msg.topic, uniq, out_ms)
        used = self._copies_used.get(key, 0)
        if copies > used:
            self._copies_used[key] = used + 1
            return True
        return False

    # -- progress --------------------------------------------------------------------------------------
    def checkpoint(self, *, clean: bool) -> TimerCheckpoint:
        now = self.clock.now_ms()
        return TimerCheckpoint(
            sweep_ms=self._done[0],
            sweep_phy=self._done[1],
            enqueue_phy=self._enqueue_phy,
            scan_queue_offset=self.index.low_queue_offset(self._enqueue_offset),
            late=sorted(self._late),
            clean=clean,
            timestamp=now,
            # Deliveries after this marker may be lost by a crash: the next start looks for them from here,
            # or from further back while suspects of an earlier crash still wait for their check.
            check_since_ms=self._suspects_since_ms if self._suspects else max(0, now - _SUSPECT_SLACK_MS),
        )

    async def _persist(self, *, clean: bool) -> None:
        async with self._persist_lock:
            self.checkpoints.update(self.checkpoint(clean=clean))
            await self.checkpoints.persist_async()

    async def persist(self) -> None:
        """Write the progress marker now (it is also written every ``timerFlushIntervalMs`` and at stop)."""
        await self._persist(clean=False)

    async def _persist_quietly(self) -> None:
        try:
            await self._persist(clean=False)
        except Exception:
            log.exception("timer: writing the progress marker failed; retrying at the next interval")
