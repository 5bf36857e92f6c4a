"""The official Python client (rocketmq-python-client 5.1.2), unmodified, in its own processes, against
``orbitmq standalone`` (proxy in local mode) and against a NameServer + two brokers + ``orbitmq proxy``.

The clients and the servers are slow to start (a second or two each), so each test runs several scenarios
with the same processes; the assertion messages say which scenario failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.compat.official.harness import ClientProcess, ProxiedServers, proxied_cluster, standalone

pytestmark = pytest.mark.slow


#: Brokers check an orphaned transaction after 1 s (upstream: 6 s, and passes every 30 s).
TX_CHECKS = {"transactionTimeOut": "1000", "transactionCheckInterval": "1000"}


@pytest.fixture(params=["standalone", "cluster"])
async def servers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProxiedServers]:
    start = standalone if request.param == "standalone" else proxied_cluster
    async with start(tmp_path, broker_props=TX_CHECKS) as s:
        yield s


async def receive_all(consumer: ClientProcess, count: int, rounds: int = 20, **kw: object) -> list[dict]:
    got: list[dict] = []
    for _ in range(rounds):
        answer = await consumer.call("receive", max=32, **kw)
        got += answer["messages"]
        if len(got) >= count:
            break
    return got


async def test_producer_and_simple_consumer(servers: ProxiedServers) -> None:
    topic = "PyT"  # not created beforehand: the producer starts on TBW102's route, its first send creates it
    producer = await servers.client("python", "producer", topics=[topic], checker="commit")
    sent = [
        await producer.call(
            "send", topic=topic, body=f"m{i}", tag="TagA", keys=[f"k{i}", "shared"], properties={"p": str(i)}
        )
        for i in range(5)
    ]
    # stored as sent
    for i, s in enumerate(sent):
        [rec] = await servers.stored(topic, s["message_id"])
        assert rec.body == f"m{i}".encode() and rec.tags == "TagA", servers.describe()
        assert sorted(rec.keys) == sorted([f"k{i}", "shared"]) and rec.properties["p"] == str(i)
    # received with every field the clients check
    consumer = await servers.client("python", "simple", topics=[topic], group="PySimple", await_s=2)
    got = await receive_all(consumer, 5, invisible_s=20)
    assert sorted(m["message_id"] for m in got) == sorted(s["message_id"] for s in sent), servers.describe()
    for m in got:
        i = m["body"][1:]
        assert m["topic"] == topic and m["tag"] == "TagA" and m["properties"] == {"p": i}
        assert sorted(m["keys"]) == sorted([f"k{i}", "shared"])
        assert m["delivery_attempt"] == 1 and not m["corrupted"]
    # change invisible duration, then ack with the handle it returned (the client swaps it in itself)
    await consumer.call("change", message_id=got[0]["message_id"], invisible_s=30)
    for m in got:
        await consumer.call("ack", message_id=m["message_id"])
    assert not (await consumer.call("receive", max=32, invisible_s=20))["messages"]
    # a delay message is not delivered before its time
    delayed = await producer.call("send", topic=topic, body="later", delay_s=3)
    late = await receive_all(consumer, 1, rounds=10, invisible_s=20)
    assert [m["message_id"] for m in late] == [delayed["message_id"]], servers.describe()
    due_ms = late[0]["delivery_timestamp"]  # sent in whole seconds, received back in milliseconds (5.1.2)
    assert late[0]["received_at_ms"] >= due_ms >= delayed["sent_at_ms"] + 2000
    # transactions: committed → delivered; rolled back → never; orphaned → the broker asks (through the proxy,
    # over the producer's Telemetry stream), the checker says commit → delivered
    committed = await producer.call("send_tx", topic=topic, body="tx-commit", resolution="commit")
    rolled_back = await producer.call("send_tx", topic=topic, body="tx-rollback", resolution="rollback")
    orphan = await producer.call("send_tx", topic=topic, body="tx-orphan", resolution="none")
    tx = await receive_all(consumer, 2, rounds=15, invisible_s=20)
    assert sorted(m["message_id"] for m in tx) == sorted([committed["message_id"], orphan["message_id"]]), (
        servers.describe()
    )
    assert rolled_back["message_id"] not in {m["message_id"] for m in tx}
    assert [e["message"]["message_id"] for e in producer.find("checked")] == [orphan["message_id"]]
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


async def test_push_consumers_retry_and_keep_fifo_order(servers: ProxiedServers) -> None:
    topic, fifo_topic, fifo_group = "PyPushT", "PyFifoT", "PyFifoG"
    await servers.create_topic(topic)
    await servers.create_topic(fifo_topic, message_type="FIFO")
    await servers.create_group(fifo_group, orderly=True)  # the settings tell the push consumer: FIFO
    producer = await servers.client("python", "producer", topics=[topic, fifo_topic])
    # a failed message is nacked (ChangeInvisibleDuration) and redelivered with attempt 2
    push = await servers.client(
        "python", "push", topics=[topic], group="PyPush", fail={"body_matches": "^m1$", "times": 1}
    )
    for i in range(3):
        await producer.call("send", topic=topic, body=f"m{i}")
    ok = await push.wait_for_count(lambda e: e.get("event") == "msg" and not e["failed"], 3, timeout=60)
    assert sorted(e["body"] for e in ok) == ["m0", "m1", "m2"], servers.describe()
    assert next(e for e in ok if e["body"] == "m1")["delivery_attempt"] == 2
    assert await push.shutdown() == 0
    # FIFO: each message group in send order, over both brokers' queues
    for i in range(6):
        for g in ("g1", "g2"):
            await producer.call("send", topic=fifo_topic, body=f"{g}-{i}", message_group=g)
    fifo = await servers.client("python", "push", topics=[fifo_topic], group=fifo_group)
    got = await fifo.wait_for_count(lambda e: e.get("event") == "msg", 12, timeout=60)
    for g in ("g1", "g2"):
        assert [e["body"] for e in got if e["message_group"] == g] == [f"{g}-{i}" for i in range(6)], (
            servers.describe()
        )
    assert await fifo.shutdown() == 0
