"""The real ali-ons 3.12.0 client sends timed messages (its free-form properties carry TIMER_DELAY_MS /
TIMER_DELIVER_MS) and consumes them: delivered once, not before their time, with upstream's timer
properties; ali-ons decodes the delivered records."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.compat.alions import NodeProcesses
from tests.compat.servers import (
    FAST_CONSUMER,
    bodies,
    create_topic,
    delivered,
    orbitmq_cluster,
    unexpected_errors,
)


@pytest.mark.slow
async def test_alions_timed_messages(alions: NodeProcesses, tmp_path: Path) -> None:
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, "AlionsTimed", 2)
        consumer = await alions.start_consumer(
            cluster.namesrv_addr, "CG_TIMED", "AlionsTimed", options=FAST_CONSUMER
        )
        at = int(time.time() * 1000) + 3000
        producer = await alions.start_producer(
            cluster.namesrv_addr, "AlionsTimed", count=4, tags="T",
            properties={"TIMER_DELAY_MS": "2000", "TIMER_DELIVER_MS": str(at)},  # DELAY_MS is read first
        )  # fmt: skip
        done = await producer.wait_for_event("done", timeout=30)
        assert done == {"event": "done", "sent": 4, "failed": 0}, producer.describe()
        plain = await alions.start_producer(
            cluster.namesrv_addr, "AlionsTimed", count=1, body="plain-{i}", tags="T"
        )
        assert (await plain.wait_for_event("done", timeout=30))["sent"] == 1
        msgs = await delivered(consumer, 5, timeout=30)
        assert bodies(msgs) == ["msg-0", "msg-1", "msg-2", "msg-3", "plain-0"], consumer.describe()
        for m in msgs:
            props = m["properties"]
            if m["body"].startswith("plain"):
                assert "TIMER_OUT_MS" not in props
                continue
            assert int(props["TIMER_DEQUEUE_MS"]) >= int(props["TIMER_OUT_MS"])  # never early
            assert int(props["TIMER_OUT_MS"]) - int(props["TIMER_ENQUEUE_MS"]) >= 1900
            assert "REAL_TOPIC" not in props and "REAL_QID" not in props and m["reconsumeTimes"] == 0
        first_timed = min(m["queueOffset"] for m in msgs if m["body"].startswith("msg"))
        assert all(m["queueId"] in (0, 1) for m in msgs) and first_timed >= 0
        assert not unexpected_errors(consumer), consumer.describe()
