"""A burst of 100,000 timed messages due over a few seconds: every one delivered exactly once, none early."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from orbitmq.broker.timer import TimerVerdict, apply_timer
from orbitmq.protocol.record import Prop, decode_record
from orbitmq.store.api import GetStatus, MessageToStore

from .conftest import Cluster, until

log = logging.getLogger(__name__)

COUNT = 100_000
QUEUES = 4
SPREAD_MS = 3_000


@pytest.mark.slow
async def test_burst_of_100k_timed_messages(make_cluster: Callable[..., Awaitable[Cluster]]) -> None:
    c = await make_cluster()
    store, timer = c.b.store, c.b.timer
    assert timer is not None
    now = int(time.time() * 1000)
    start = now + 8_000  # puts of 100k take a few seconds on a busy machine; a late put is still correct
    batch: list[MessageToStore] = []
    for i in range(COUNT):
        props = {Prop.TIMER_DELIVER_MS: str(start + (i * 7919) % SPREAD_MS), Prop.UNIQ_KEY: f"K{i}"}
        msg = MessageToStore(topic="Burst", queue_id=i % QUEUES, body=b"%d" % i, properties=props)
        assert apply_timer(msg, now, 3600).verdict is TimerVerdict.PARKED
        batch.append(msg)
        if len(batch) == 1000:
            assert (await store.put_messages(batch)).ok
            batch = []
    await until(lambda: timer.stats.delivered == COUNT, timeout=60)
    seen: set[str] = set()
    lateness: list[int] = []
    for q in range(QUEUES):
        offset = 0
        while True:
            res = store.get_messages("Burst", q, offset, 1024, max_bytes=1 << 26)
            if res.status is not GetStatus.FOUND:
                break
            for view in res.buffers:
                rec = decode_record(view)
                due = int(rec.properties[Prop.TIMER_OUT_MS])
                assert rec.store_timestamp >= due, "delivered before its time"
                lateness.append(rec.store_timestamp - due)
                seen.add(rec.properties[Prop.UNIQ_KEY])
            offset = res.next_begin_offset
    assert len(lateness) == COUNT and len(seen) == COUNT  # each exactly once
    assert timer.pending == 0
    lateness.sort()
    log.info(
        "lateness p50 %d ms, p99 %d ms, max %d ms",
        lateness[COUNT // 2],
        lateness[COUNT * 99 // 100],
        lateness[-1],
    )
