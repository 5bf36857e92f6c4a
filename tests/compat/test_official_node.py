"""The official Node.js client (rocketmq-client-nodejs 1.0.8), unmodified, in its own processes, against
``orbitmq standalone`` and against a NameServer + two brokers + ``orbitmq proxy``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.compat.official.harness import ProxiedServers, check_node5_environment, proxied_cluster, standalone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def node5() -> None:
    try:
        reason = check_node5_environment()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(params=["standalone", "cluster"])
async def servers(
    node5: None, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ProxiedServers]:
    start = standalone if request.param == "standalone" else proxied_cluster
    async with start(tmp_path) as s:
        yield s


async def test_node_producer_sends_are_stored_as_sent(servers: ProxiedServers) -> None:
    topic = "NodeSendT"
    await servers.create_topic(topic)  # Node 1.0.8's startup fails when the route query does
    producer = await servers.client("node", "producer", topics=[topic])
    sent = [
        await producer.call(
            "send", topic=topic, body=f"n{i}", tag="TagN", keys=[f"k{i}"], properties={"lang": "js"}
        )
        for i in range(4)
    ]
    for i, s in enumerate(sent):
        [rec] = await servers.stored(topic, s["message_id"])
        assert rec.body == f"n{i}".encode() and rec.tags == "TagN" and rec.keys == [f"k{i}"], (
            servers.describe()
        )
        assert rec.properties["lang"] == "js"
    assert await producer.shutdown() == 0
