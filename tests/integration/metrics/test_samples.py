"""What components record for the exporter: store latencies, group-commit batches, long-poll releases."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbitmq.broker.longpoll import PullRequestHoldService, WakeReason
from orbitmq.core.clock import FakeClock
from orbitmq.core.metrics import Histogram
from orbitmq.store import FileMessageStore, FlushDiskType, MessageToStore, StoreConfig
from orbitmq.store.api import DispatchRequest


async def test_sync_flush_records_appends_fsyncs_and_batch_sizes(tmp_path: Path) -> None:
    store = FileMessageStore(
        StoreConfig(
            str(tmp_path), flush_disk_type=FlushDiskType.SYNC_FLUSH, mapped_file_size_commit_log=1 << 20
        )
    )
    await store.start()
    try:
        results = await asyncio.gather(*(store.put_message(MessageToStore("T", 0, b"x")) for _ in range(10)))
        assert all(r.ok for r in results)
    finally:
        await store.stop()
    assert isinstance(store.append_latency, Histogram) and isinstance(store.flush_latency, Histogram)
    assert store.append_latency.snapshot().count == 10
    assert store.flush_latency.snapshot().count == store.stats.flushes >= 1
    assert store.group_commit is not None and isinstance(store.group_commit.batch_sizes, Histogram)
    batches = store.group_commit.batch_sizes.snapshot()
    assert batches.sum == 10 == store.group_commit.flushed_requests
    assert batches.count <= 10


async def test_long_poll_counts_holds_and_releases_by_reason() -> None:
    clock = FakeClock()
    svc = PullRequestHoldService(clock, max_requests=2)
    await svc.start()
    try:
        woken = svc.hold("T", 0, 0, 15_000, conn_id=1)
        timed_out = svc.hold("T", 1, 0, 1_000, conn_id=1)
        assert svc.hold("T", 2, 0, 1_000, conn_id=1) is None  # table full
        assert woken is not None and timed_out is not None
        svc.notify_message_arriving(DispatchRequest("T", 0, 0, 0, 10, 0, 0, 0, {}))
        assert await woken == WakeReason.MESSAGE
        await asyncio.sleep(0)  # the release callbacks run (a held pull handler resumes after them)
        await clock.advance(2)
        assert await timed_out == WakeReason.TIMEOUT
        await asyncio.sleep(0)
    finally:
        await svc.stop()
    assert svc.holds == 2 and svc.refused == 1
    assert svc.releases == {WakeReason.MESSAGE: 1, WakeReason.TIMEOUT: 1}
    assert isinstance(svc.wake_latency, Histogram)
    assert svc.wake_latency.snapshot().count == 1  # only message wake-ups have a wake latency
    assert svc.wake_latency.snapshot().sum == 0  # the fake clock did not move in between
