"""Offset resets with the real ali-ons 3.12.0 consumer, made with the ``orbitmq admin`` command:

- for a group that never consumed the topic, then a broker restart: the first ali-ons consumer starts at the
  reset point (it asks QUERY_CONSUMER_OFFSET, which answers the persisted reset);
- while ali-ons consumes: its waiting pull is answered PULL_OFFSET_MOVED with the new offset, which ali-ons
  takes as its position (it ignores RESET_CONSUMER_CLIENT_OFFSET, so the broker-side reset is what works).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compat.alions import NodeProcesses
from tests.compat.servers import FAST_CONSUMER, OrbitCluster, create_topic, delivered, orbitmq_cluster

STEP = 30.0
pytestmark = pytest.mark.slow


async def admin(cluster: OrbitCluster, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbitmq.cli", "admin", "--namesrv", cluster.namesrv_addr, *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), STEP)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def produce(alions: NodeProcesses, cluster: OrbitCluster, topic: str, count: int) -> None:
    producer = await alions.start_producer(cluster.namesrv_addr, topic, count=count)
    done = await producer.wait_for_event("done", timeout=STEP)
    assert done["sent"] == count, producer.describe()


async def test_reset_for_a_never_seen_group_survives_a_restart(alions: NodeProcesses, tmp_path: Path) -> None:
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, "AlionsResetT", 2)
        await produce(alions, cluster, "AlionsResetT", 10)  # 5 per queue (ali-ons sends round robin)
        out = await admin(cluster, "offset", "reset", "--group", "CG_RESET_NEW", "--topic", "AlionsResetT",
                          "--offset", "3", "--json")  # fmt: skip
        assert [q["offset"] for q in json.loads(out)["queues"]] == [3, 3]
        await cluster.restart_broker()
        consumer = await alions.start_consumer(cluster.namesrv_addr, "CG_RESET_NEW", "AlionsResetT",
                                               options=FAST_CONSUMER)  # fmt: skip
        msgs = await delivered(consumer, 4, timeout=STEP)
        assert sorted((m["queueId"], int(m["queueOffset"])) for m in msgs) == [(0, 3), (0, 4), (1, 3), (1, 4)]
        await consumer.stop()


async def test_reset_while_ali_ons_consumes_replays_from_the_new_point(
    alions: NodeProcesses, tmp_path: Path
) -> None:
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, "AlionsReplayT", 2)
        await produce(alions, cluster, "AlionsReplayT", 10)
        consumer = await alions.start_consumer(cluster.namesrv_addr, "CG_RESET_LIVE", "AlionsReplayT",
                                               consume_from_where="CONSUME_FROM_FIRST_OFFSET",
                                               options=FAST_CONSUMER)  # fmt: skip
        first = await delivered(consumer, 10, timeout=STEP)
        assert len(first) == 10
        since = len(consumer.events)
        await admin(cluster, "offset", "reset", "--group", "CG_RESET_LIVE", "--topic", "AlionsReplayT",
                    "--offset", "2")  # fmt: skip
        again = await delivered(consumer, 6, timeout=STEP, since=since)
        assert sorted((m["queueId"], int(m["queueOffset"])) for m in again) == [
            (q, o) for q in (0, 1) for o in (2, 3, 4)
        ]
        await consumer.stop()
