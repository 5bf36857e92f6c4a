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


async def test_node_producer_and_simple_consumer(servers: ProxiedServers) -> None:
    topic = "NodeT"
    await servers.create_topic(topic)
    producer = await servers.client("node", "producer", topics=[topic])
    consumer = await servers.client("node", "simple", topics=[topic], group="NodeSimple", awaitMs=2000)
    sent = [
        await producer.call(
            "send", topic=topic, body=f"n{i}", tag="TagN", keys=[f"k{i}"], properties={"lang": "js"}
        )
        for i in range(4)
    ]
    for i, s in enumerate(sent):  # stored as sent
        [rec] = await servers.stored(topic, s["message_id"])
        assert rec.body == f"n{i}".encode() and rec.tags == "TagN" and rec.keys == [f"k{i}"], (
            servers.describe()
        )
        assert rec.properties["lang"] == "js"
    got: list[dict] = []
    for _ in range(20):
        got += (await consumer.call("receive", max=16, invisibleMs=20000))["messages"]
        if len(got) >= 4:
            break
    assert sorted(m["message_id"] for m in got) == sorted(s["message_id"] for s in sent), servers.describe()
    assert all(m["tag"] == "TagN" and m["delivery_attempt"] == 1 and not m["corrupted"] for m in got)
    # The proxy made the consumer a member of its group on the brokers (what `admin group describe` lists).
    assert {m["language"] for m in await servers.members("NodeSimple")} == {"NODE_JS"}, servers.describe()
    await consumer.call("change", messageId=got[0]["message_id"], invisibleMs=30000)
    for m in got:
        await consumer.call("ack", messageId=m["message_id"])
    assert not (await consumer.call("receive", max=16, invisibleMs=20000))["messages"]
    assert await producer.shutdown() == 0 and await consumer.shutdown() == 0


async def test_python_and_node_clients_read_each_others_messages(servers: ProxiedServers) -> None:
    topic = "MixedT"
    await servers.create_topic(topic)
    node_producer = await servers.client("node", "producer", topics=[topic])
    py_producer = await servers.client("python", "producer", topics=[topic])
    a = await node_producer.call("send", topic=topic, body="from-node", properties={"lang": "node"})
    b = await py_producer.call("send", topic=topic, body="from-python", properties={"lang": "python"})
    for language, group in (("python", "MixPy"), ("node", "MixNode")):
        extra = {"await_s": 2} if language == "python" else {"awaitMs": 2000}
        consumer = await servers.client(language, "simple", topics=[topic], group=group, **extra)
        got: list[dict] = []
        for _ in range(20):
            kw = {"invisible_s": 20} if language == "python" else {"invisibleMs": 20000}
            got += (await consumer.call("receive", max=16, **kw))["messages"]
            if len(got) >= 2:
                break
        by_id = {m["message_id"]: m for m in got}
        assert set(by_id) == {a["message_id"], b["message_id"]}, servers.describe()
        assert by_id[a["message_id"]]["properties"] == {"lang": "node"}
        assert by_id[b["message_id"]]["body"] == "from-python"
