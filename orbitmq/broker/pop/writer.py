"""Writing checkpoints and acks to the revive log, synchronously or asynchronously (``appendCkAsync``,
``appendAckAsync``; pop-and-storage §2 S1).

Every write is a task that appends the record and retries until the store accepts it: a failed write is
retried with back-off and never silently dropped. :meth:`ReviveLogWriter.submit` starts the write and
returns a future that resolves with the final :class:`PutResult` once the record is stored (under
SYNC_FLUSH: flushed). :meth:`ReviveLogWriter.write` is what request handlers call:

- synchronous mode: it waits for the future (the request is answered after the flush);
- asynchronous mode: it returns at once; the append reaches the page cache before any later request is
  read (the write task is first in the loop's ready queue), the flush completes in the background and the
  caller's completion callback does what must wait for durability (the offset commit of a pop);
- the number of writes not yet stored is bounded (``popCkOffsetMaxQueueSize``); past the bound an
  asynchronous write falls back to waiting (back-pressure, never loss) and is counted in ``fallbacks``.

Writes to the store are issued in submission order, so an ack is appended after the checkpoint it refers
to, unless the checkpoint's first attempt failed (then the ack may precede its retried checkpoint; the
revive matching keeps such early acks, :mod:`orbitmq.broker.pop.revive_state`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from orbitmq.core.clock import Clock
from orbitmq.core.service import Service
from orbitmq.store.api import MessageStore, MessageToStore, PutResult, PutStatus

__all__ = ["RETRY_BACKOFF_MS", "ReviveLogWriter"]

log = logging.getLogger("orbitmq.broker.pop")

#: Pause before retry n (the last value repeats): quick at first, then at most once a second.
RETRY_BACKOFF_MS: Final = (5, 20, 100, 500, 1000)
#: Statuses that retrying cannot fix (the record itself is refused): resolved as failed at once.
_PERMANENT: Final = frozenset({PutStatus.MESSAGE_ILLEGAL, PutStatus.PROPERTIES_SIZE_EXCEEDED})
#: The record is appended and will be flushed: upstream counts these as stored too.
_STORED: Final = frozenset({PutStatus.PUT_OK, PutStatus.FLUSH_DISK_TIMEOUT})


class ReviveLogWriter(Service):
    """Retrying writer of revive-log records; its counters are read by the metrics exporter."""

    has_task = False

    def __init__(self, store: MessageStore, clock: Clock, *, max_pending: int = 20_000) -> None:
        super().__init__("ReviveLogWriter", clock)
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.store = store
        self._clock = clock
        self.max_pending = max_pending
        self._tasks: set[asyncio.Task[PutResult]] = set()
        # -- counters --
        self.submitted = 0
        self.stored = 0
        self.failed = 0  # resolved without being stored (refused record, or broker stopping)
        self.retries = 0  # attempts after a failed one
        self.fallbacks = 0  # asynchronous writes that waited because too many were pending
        self.store_latency_ms_total = 0.0  # submit → stored, summed over stored writes
        self.store_latency_ms_max = 0.0

    @property
    def pending(self) -> int:
        """Writes submitted and not yet resolved."""
        return len(self._tasks)

    def submit(self, msg: MessageToStore) -> asyncio.Future[PutResult]:
        """Start writing ``msg`` now; the future resolves once it is stored (or can never be)."""
        self.submitted += 1
        task = asyncio.get_running_loop().create_task(self._write(msg), name="revive-log-write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start_write(
        self, msg: MessageToStore, *, asynchronous: bool
    ) -> tuple[asyncio.Future[PutResult], bool]:
        """Submit ``msg``; the second value says whether the caller must wait for the future: always in
        synchronous mode, and in asynchronous mode when ``max_pending`` writes are already outstanding."""
        full = self.pending >= self.max_pending
        fut = self.submit(msg)
        if asynchronous and full:
            self.fallbacks += 1
        return fut, not asynchronous or full

    async def write(self, msg: MessageToStore, *, asynchronous: bool) -> asyncio.Future[PutResult]:
        """:meth:`start_write` and wait when it says so. Returns the write's future either way."""
        fut, wait = self.start_write(msg, asynchronous=asynchronous)
        if wait:
            await asyncio.shield(fut)
        return fut

    async def barrier(self) -> None:
        """Wait until every write submitted so far is resolved."""
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)

    async def _write(self, msg: MessageToStore) -> PutResult:
        start = self._clock.monotonic()
        attempt = 0
        while True:
            try:
                result = await self.store.put_message(msg)
            except Exception as exc:  # a store bug must not kill the write: treat as a failed attempt
                log.exception("revive log write to %s q%d raised", msg.topic, msg.queue_id)
                result = PutResult(PutStatus.SERVICE_NOT_AVAILABLE, remark=repr(exc))
            if result.status in _STORED:
                elapsed = (self._clock.monotonic() - start) * 1000
                self.stored += 1
                self.store_latency_ms_total += elapsed
                self.store_latency_ms_max = max(self.store_latency_ms_max, elapsed)
                return result
            if result.status in _PERMANENT or self.state.value in ("stopped", "failed"):
                self.failed += 1
                log.error("revive log record for %s q%d not stored: %s %s",
                          msg.topic, msg.queue_id, result.status.value, result.remark)  # fmt: skip
                return result
            if attempt == 0 or attempt % 100 == 0:
                log.warning("revive log write failed (%s %s); retrying (attempt %d)",
                            result.status.value, result.remark, attempt + 1)  # fmt: skip
            delay = RETRY_BACKOFF_MS[min(attempt, len(RETRY_BACKOFF_MS) - 1)] / 1000
            attempt += 1
            self.retries += 1
            await self._clock.sleep(delay)

    async def on_stop(self) -> None:
        """Give outstanding writes a moment to land; whatever is still failing then is given up (the pops
        they belong to are not committed, so their messages come again after a restart)."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _done, still = await asyncio.wait(tasks, timeout=2.0)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
            self.failed += len(still)
            log.warning("%d revive log writes were still failing at shutdown", len(still))
