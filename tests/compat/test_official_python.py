"""The official Python client (rocketmq-python-client 5.1.2), unmodified, in its own processes, against
``orbitmq standalone`` (proxy in local mode) and against a NameServer + two brokers + ``orbitmq proxy``.

The clients are slow to start (a second or two each), so each test runs several scenarios with the same
processes; the assertion messages say which scenario failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.compat.official.harness import ClientProcess, ProxiedServers, proxied_cluster, standalone

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


async def receive_all(consumer: ClientProcess, count: int, rounds: int = 20, **kw: object) -> list[dict]:
    got: list[dict] = []
    for _ in range(rounds):
        answer = await consumer.call("receive", max=32, **kw)
        got += answer["messages"]
        if len(got) >= count:
            break
    return got


async def test_producer_and_simple_consumer(servers: ProxiedServers) -> None:
    topic = "PyT"
    await servers.create_topic(topic)
    producer = await servers.client("python", "producer", topics=[topic])
    consumer = await servers.client("python", "simple", topics=[topic], group="PySimple", await_s=2)
    sent = [
        await producer.call(
            "send", topic=topic, body=f"m{i}", tag="TagA", keys=[f"k{i}"], properties={"p": str(i)}
        )
        for i in range(5)
    ]
    got = await receive_all(consumer, 5, invisible_s=20)
    assert sorted(m["message_id"] for m in got) == sorted(s["message_id"] for s in sent), servers.describe()
    for m in got:
        i = m["body"][1:]
        assert (
            m["topic"] == topic
            and m["tag"] == "TagA"
            and m["keys"] == [f"k{i}"]
            and m["properties"] == {"p": i}
        )
        assert m["delivery_attempt"] == 1 and not m["corrupted"]
    # change invisible duration, then ack with the handle it returned (the client swaps it in itself)
    await consumer.call("change", message_id=got[0]["message_id"], invisible_s=30)
    for m in got:
        await consumer.call("ack", message_id=m["message_id"])
    assert not (await consumer.call("receive", max=32, invisible_s=20))["messages"]
    assert await producer.shutdown() == 0 and await consumer.shutdown() == 0


async def test_unacked_message_is_redelivered_with_attempt_2_then_dead_lettered(
    servers: ProxiedServers,
) -> None:
    topic, group = "PyRetryT", "PyRetryG"
    await servers.create_topic(topic)
    await servers.create_group(group, retry_max_times=1)  # at most two deliveries
    producer = await servers.client("python", "producer", topics=[topic])
    consumer = await servers.client("python", "simple", topics=[topic], group=group, await_s=2)
    sent = await producer.call("send", topic=topic, body="doomed")
    first = await receive_all(consumer, 1, invisible_s=1)
    assert [m["delivery_attempt"] for m in first] == [1], servers.describe()
    second = await receive_all(consumer, 1, rounds=30, invisible_s=1)
    assert [(m["message_id"], m["delivery_attempt"]) for m in second] == [(sent["message_id"], 2)]
    third = await receive_all(consumer, 1, rounds=6, invisible_s=1)
    assert not third, "a message over its attempts must not be delivered again"
    dlq_reader = await servers.client(
        "python", "simple", topics=[f"%DLQ%{group}"], group="PyDlqReader", await_s=2
    )
    dead = await receive_all(dlq_reader, 1, rounds=10, invisible_s=20)
    assert [m["message_id"] for m in dead] == [sent["message_id"]], servers.describe()


async def test_push_consumer_retries_a_failed_message(servers: ProxiedServers) -> None:
    topic = "PyPushT"
    await servers.create_topic(topic)
    producer = await servers.client("python", "producer", topics=[topic])
    push = await servers.client(
        "python", "push", topics=[topic], group="PyPush", fail={"body_matches": "^m1$", "times": 1}
    )
    for i in range(3):
        await producer.call("send", topic=topic, body=f"m{i}")
    ok = await push.wait_for_count(lambda e: e.get("event") == "msg" and not e["failed"], 3, timeout=60)
    assert sorted(e["body"] for e in ok) == ["m0", "m1", "m2"], servers.describe()
    retried = next(e for e in ok if e["body"] == "m1")
    assert retried["delivery_attempt"] == 2  # nacked once (ChangeInvisibleDuration), then redelivered
    assert await push.shutdown() == 0
    await asyncio.sleep(0)
