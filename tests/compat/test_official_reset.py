"""Offset resets for gRPC consumers: the official Python client (rocketmq-python-client 5.1.2, unmodified, its
own process) receiving through ``orbitmq proxy`` from a NameServer and two brokers, reset with AdminClient:

- a reset for a group that never consumed the topic, then both brokers restarted, then the first consumer
  receives exactly the messages from the reset point on;
- a reset while it consumes moves what it receives next (the proxy pops; POP picks the reset up);
- meanwhile ``group describe`` lists the consumer (the proxy heart-beats it to both brokers), and not after
  it shut down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbitmq.admin import AdminClient
from tests.compat.official.harness import ClientProcess, ProxiedServers, proxied_cluster
from tests.compat.servers import start_broker

pytestmark = pytest.mark.slow

TOPIC, GROUP = "PxResetT", "PxResetG"


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[ProxiedServers]:
    async with proxied_cluster(tmp_path) as s:
        yield s


async def receive(consumer: ClientProcess, count: int, rounds: int = 15) -> list[str]:
    """Bodies of the next ``count`` messages (acked), or fewer if no more come within ``rounds`` polls."""
    bodies: list[str] = []
    for _ in range(rounds):
        for m in (await consumer.call("receive", max=32, invisible_s=20))["messages"]:
            bodies.append(m["body"])
            await consumer.call("ack", message_id=m["message_id"])
        if len(bodies) >= count:
            break
    return bodies


async def restart_brokers(servers: ProxiedServers, tmp_path: Path) -> None:
    """Stop each broker process cleanly and start it again on its directory and port."""
    namesrv = servers.processes[0]
    for i, name in enumerate(("broker-a", "broker-b"), start=1):
        old = servers.processes[i]
        assert await old.stop() == 0, old.log_tail()
        servers.processes[i] = await start_broker(namesrv.address, tmp_path / name, tmp_path / "logs", old.port,
                                                  brokerName=name)  # fmt: skip


async def after_now(admin: AdminClient) -> int:
    """A time after every message stored so far, reached by the clock (the next ones are stored at or after)."""
    mark = max(q.last_update_ms for q in await admin.topic_status(TOPIC)) + 1
    while time.time() * 1000 < mark:
        await asyncio.sleep(0.001)
    return mark


async def test_grpc_consumer_starts_at_a_reset_made_before_a_restart_and_follows_a_live_one(
    servers: ProxiedServers, tmp_path: Path
) -> None:
    namesrv = servers.processes[0].address
    await servers.create_topic(TOPIC, queues=2)
    producer = await servers.client("python", "producer", topics=[TOPIC])
    async with AdminClient(namesrv) as admin:
        for i in range(8):
            await producer.call("send", topic=TOPIC, body=f"old{i}")
        mark = await after_now(admin)
        for i in range(8):
            await producer.call("send", topic=TOPIC, body=f"new{i}")
        done = await admin.reset_offset(GROUP, TOPIC, timestamp=mark)  # GROUP never consumed anything
        assert len(done) == 4
    await restart_brokers(servers, tmp_path)

    consumer = await servers.client("python", "simple", topics=[TOPIC], group=GROUP, await_s=2)
    first = await receive(consumer, 8)
    assert sorted(first) == [f"new{i}" for i in range(8)], servers.describe()

    async with AdminClient(namesrv) as admin:
        d = await admin.describe_group(GROUP)
        assert [(m.language, len(m.brokers)) for m in d.members] == [("PYTHON", 2)], d.to_json()
        assert d.mode == "CLUSTERING POP" and d.subscriptions == {TOPIC: "*"}, d.to_json()
        for i in range(4):
            await producer.call("send", topic=TOPIC, body=f"late{i}")
        await admin.reset_offset(GROUP, TOPIC, timestamp=mark)  # replay the "new" messages, not the old
    again = await receive(consumer, 12)
    assert sorted(again) == sorted([f"new{i}" for i in range(8)] + [f"late{i}" for i in range(4)]), (
        servers.describe()
    )
    assert await consumer.shutdown() == 0 and await producer.shutdown() == 0
    async with AdminClient(namesrv) as admin:
        async with asyncio.timeout(10):
            while (await admin.describe_group(GROUP)).members:  # unregistered in the background
                await asyncio.sleep(0.1)
