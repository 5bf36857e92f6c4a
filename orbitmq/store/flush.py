"""Background services of the file store: CommitLog flush (group commit or periodic), consume-queue and
index flush with the checkpoint, and the clean service (retention, disk guard).

Every fsync runs in the store's worker threads; the event loop only decides what to flush and completes
the futures of appends that waited for durability.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from orbitmq.core.metrics import BATCH_SIZE_BUCKETS, Histogram, Recorder
from orbitmq.core.service import Service

if TYPE_CHECKING:
    from orbitmq.store.file_store import FileMessageStore

__all__ = ["CheckpointService", "CleanService", "GroupCommitService", "PeriodicFlushService"]

log = logging.getLogger("orbitmq.store")

PAGE = 4096


class GroupCommitService(Service):
    """SYNC_FLUSH: every append waiting at the moment of a flush shares that one fsync.

    An append's future resolves True once its bytes are durable, False if the flush failed. Appends that
    arrive while an fsync runs are taken by the next one.
    """

    def __init__(self, store: FileMessageStore) -> None:
        super().__init__("store-group-commit")
        self.store = store
        self._waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self.flushes = 0
        self.flushed_requests = 0
        #: Appends completed by each flush that completed any: how well group commit groups.
        self.batch_sizes: Recorder = Histogram(BATCH_SIZE_BUCKETS)

    def request(self, end: int) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append((end, fut))
        self.wakeup()
        return fut

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(0.01)
            await self.flush_once()
        await self.flush_once()

    async def flush_once(self) -> None:
        ok = await self.store.flush_commitlog()
        if ok:
            self.flushes += 1
        flushed = self.store.commitlog.flushed_pos
        keep: list[tuple[int, asyncio.Future[bool]]] = []
        for end, fut in self._waiters:
            if end <= flushed or not ok:
                if not fut.done():
                    fut.set_result(ok)
            else:
                keep.append((end, fut))
        completed = len(self._waiters) - len(keep)
        if completed:
            self.flushed_requests += completed
            self.batch_sizes.observe(completed)
        self._waiters = keep

    def on_failed(self, exc: BaseException) -> None:
        for _end, fut in self._waiters:
            if not fut.done():
                fut.set_result(False)
        self._waiters.clear()


class PeriodicFlushService(Service):
    """ASYNC_FLUSH: flush when enough pages are dirty, and everything at the thorough interval."""

    def __init__(self, store: FileMessageStore) -> None:
        super().__init__("store-flush")
        self.store = store

    async def run(self) -> None:
        cfg = self.store.config
        clock = self.store.clock
        last_thorough = clock.monotonic()
        while not self.stopping:
            await self.wait_for_wakeup(cfg.flush_interval_commit_log_ms / 1000)
            dirty = self.store.commitlog.write_pos - self.store.commitlog.flushed_pos
            now = clock.monotonic()
            thorough = (now - last_thorough) * 1000 >= cfg.flush_commit_log_thorough_interval_ms
            if dirty > 0 and (thorough or dirty >= cfg.flush_commit_log_least_pages * PAGE):
                await self.store.flush_commitlog()
                if thorough:
                    last_thorough = now
        await self.store.flush_commitlog()


class CheckpointService(Service):
    """Flushes consume queues and index files, then records in the checkpoint how far they are durable."""

    def __init__(self, store: FileMessageStore) -> None:
        super().__init__("store-checkpoint")
        self.store = store

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(self.store.config.flush_interval_consume_queue_ms / 1000)
            if not self.stopping:
                await self.store.write_checkpoint()


class CleanService(Service):
    """Retention (``fileReservedTime``) and the disk guard (``diskMaxUsedSpaceRatio``)."""

    def __init__(self, store: FileMessageStore) -> None:
        super().__init__("store-clean")
        self.store = store

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(self.store.config.clean_resource_interval_ms / 1000)
            if self.stopping:
                break
            try:
                await self.store.check_disk_space()
                await self.store.delete_expired_files()
            except OSError:
                log.exception("clean service pass failed; retrying at the next interval")
