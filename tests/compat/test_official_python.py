"""The official Python client (rocketmq-python-client 5.1.2), unmodified, in its own processes, against
``orbitmq standalone`` (proxy in local mode) and against a NameServer + two brokers + ``orbitmq proxy``.

The clients are slow to start (a second or two each), so each test runs several scenarios with the same
processes; the assertion messages say which scenario failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.compat.official.harness import ProxiedServers, proxied_cluster, standalone

pytestmark = pytest.mark.slow


@pytest.fixture(params=["standalone", "cluster"])
async def servers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProxiedServers]:
    start = standalone if request.param == "standalone" else proxied_cluster
    async with start(tmp_path) as s:
        yield s


async def test_producer_sends_are_stored_as_sent(servers: ProxiedServers) -> None:
    topic = "PySendT"
    producer = await servers.client("python", "producer", topics=[topic])  # the topic is created on first use
    sent = [
        await producer.call(
            "send", topic=topic, body=f"m{i}", tag="TagA", keys=[f"k{i}", "shared"], properties={"p": str(i)}
        )
        for i in range(5)
    ]
    for i, s in enumerate(sent):
        [rec] = await servers.stored(topic, s["message_id"])
        assert rec.body == f"m{i}".encode() and rec.tags == "TagA", servers.describe()
        assert sorted(rec.keys) == sorted([f"k{i}", "shared"]) and rec.properties["p"] == str(i)
    assert await producer.shutdown() == 0
