"""SIGKILL under continuous pop/ack load (issue 5): every message sent is eventually acked by the consumers
(none lost), and the duplicates stay within the bound docs/pop.md states, with async CK/ACK off and on.

The broker (``orbitmq standalone``, SYNC_FLUSH) runs in its own process. Consumers pop batches over every
queue and batch-ack them; when 40 % are acked the process is killed with SIGKILL and restarted on the same
data directory (another port), and the consumers carry on. Bound (docs/pop.md, "Duplicates"): a crash
redelivers at most the messages popped since the last persisted consumer offset
(``flushConsumerOffsetInterval``) plus those in flight, each at most twice (re-popped from the stale offset
and revived from its checkpoint).
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from orbitmq.cli.bench.pop import drain, fill, start_standalone, stop_standalone
from orbitmq.protocol.record import MessageRecord

pytestmark = [pytest.mark.fault, pytest.mark.slow]

TOTAL = 2000
FLUSH_OFFSETS_MS = 500
INVISIBLE_MS = 8000
CONSUMERS, BATCH = 3, 16


@pytest.mark.parametrize("async_ckack", [False, True], ids=["sync-ckack", "async-ckack"])
async def test_nothing_is_lost_and_duplicates_are_bounded_across_sigkill(tmp_path, async_ckack: bool) -> None:
    on = "true" if async_ckack else "false"
    sets = {"appendCkAsync": on, "appendAckAsync": on, "flushConsumerOffsetInterval": str(FLUSH_OFFSETS_MS),
            "reviveInterval": "200"}  # fmt: skip
    data = os.path.join(tmp_path, "store")
    server = await start_standalone(data, "SYNC_FLUSH", sets)
    try:
        assert await fill(server.broker, "Crash", TOTAL, body_of=lambda i: str(i).encode()) == TOTAL
        deliveries: list[tuple[int, float]] = []
        acked: set[int] = set()

        def delivered(records: list[MessageRecord]) -> None:
            now = time.monotonic()
            deliveries.extend((int(r.body), now) for r in records)

        def done(records: list[MessageRecord]) -> None:
            acked.update(int(r.body) for r in records)

        consumers = asyncio.create_task(
            drain(lambda: server.broker, "Crash", "CG", 10 * TOTAL, consumers=CONSUMERS, batch=BATCH,
                  invisible_ms=INVISIBLE_MS, poll_ms=1000, empty_limit=10**9, on_batch=delivered,
                  on_acked=done, tolerate_errors=True)
        )  # fmt: skip
        async with asyncio.timeout(60):
            while len(acked) < 0.4 * TOTAL:
                await asyncio.sleep(0.01)
        killed_at = time.monotonic()
        await stop_standalone(server, kill=True)
        server = await start_standalone(data, "SYNC_FLUSH", sets)
        async with asyncio.timeout(90):
            while len(acked) < TOTAL:
                await asyncio.sleep(0.05)
        consumers.cancel()
        await asyncio.gather(consumers, return_exceptions=True)
    finally:
        await stop_standalone(server)

    assert acked == set(range(TOTAL)), f"lost: {sorted(set(range(TOTAL)) - acked)[:20]}"
    duplicates = len(deliveries) - len({m for m, _ in deliveries})
    window = FLUSH_OFFSETS_MS / 1000 + 1.0  # the persist interval, plus the time the last persist took
    recent = sum(1 for _, t in deliveries if killed_at - window <= t <= killed_at)
    bound = 2 * (recent + CONSUMERS * BATCH)
    print(f"async={async_ckack}: {len(deliveries)} deliveries, {duplicates} duplicates, bound {bound}")
    assert duplicates <= bound
