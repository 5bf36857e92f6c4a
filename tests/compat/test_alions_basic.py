"""The real ali-ons 3.12.0 client against OrbitMQ (NameServer and Broker in their own processes):
producing with tags and keys, consuming, tag filtering, retry through %RETRY%, broadcasting.

What these tests establish about the wire (remoting-protocol §7, §8): ali-ons' route queries, SEND_MESSAGE_V2
headers, heartbeats, consumer-list/offset queries, held pulls and send-back are all answered in a form it
accepts; the records it decodes carry the tags, keys, ids and reconsume counts it reports to its handler.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.record import decode_records
from tests.compat.alions import NodeProcesses
from tests.compat.servers import (
    FAST_CONSUMER,
    bodies,
    broker_request,
    create_topic,
    delivered,
    orbitmq_cluster,
    unexpected_errors,
)

SHORT_DELAYS = " ".join(["1s"] * 18)


async def test_produce_with_tags_and_keys_then_consume(alions: NodeProcesses, tmp_path: Path) -> None:
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, "AlionsBasic", 4)
        producer = await alions.start_producer(
            cluster.namesrv_addr, "AlionsBasic", count=8, tags=["TagA", "TagB"], keys="key-{i} common"
        )
        done = await producer.wait_for_event("done", timeout=30)
        assert done == {"event": "done", "sent": 8, "failed": 0}, producer.describe()
        sent = {e["i"]: e for e in producer.find("sent")}
        assert {e["sendStatus"] for e in sent.values()} == {"SEND_OK"}
        assert sorted(e["queueId"] for e in sent.values()) == [0, 0, 1, 1, 2, 2, 3, 3]  # round robin

        everything = await alions.start_consumer(
            cluster.namesrv_addr, "CG_ALL", "AlionsBasic", options=FAST_CONSUMER
        )
        only_a = await alions.start_consumer(cluster.namesrv_addr, "CG_A", "AlionsBasic", expression="TagA",
                                             options=FAST_CONSUMER)  # fmt: skip
        msgs = await delivered(everything, 8)
        assert bodies(msgs) == [f"msg-{i}" for i in range(8)], everything.describe()
        by_body = {m["body"]: m for m in msgs}
        for i, e in sent.items():
            m = by_body[f"msg-{i}"]
            assert m["tags"] == ("TagA" if i % 2 == 0 else "TagB")
            assert m["keys"] == f"key-{i} common"  # ali-ons shows KEYS as the stored string
            assert m["msgId"] == e["msgId"]  # the offset message id the send answered with
            assert (m["queueId"], m["queueOffset"]) == (e["queueId"], e["queueOffset"])
            assert m["reconsumeTimes"] == 0 and m["properties"]["UNIQ_KEY"]
        tag_a = await delivered(only_a, 4)
        assert bodies(tag_a) == [f"msg-{i}" for i in range(0, 8, 2)], only_a.describe()
        assert not unexpected_errors(everything) and not unexpected_errors(only_a), everything.describe()


async def test_failing_handler_is_redelivered_through_the_retry_topic(
    alions: NodeProcesses, tmp_path: Path
) -> None:
    async with orbitmq_cluster(tmp_path, messageDelayLevel=SHORT_DELAYS) as cluster:
        await create_topic(cluster, "AlionsRetry", 2)
        consumer = await alions.start_consumer(
            cluster.namesrv_addr, "CG_RETRY", "AlionsRetry", options=FAST_CONSUMER,
            fail={"bodyMatches": "^msg-3$", "times": 2},
        )  # fmt: skip
        await consumer.wait_for_event("ready", timeout=30)
        producer = await alions.start_producer(cluster.namesrv_addr, "AlionsRetry", count=5, tags="R")
        assert (await producer.wait_for_event("done", timeout=30))["sent"] == 5
        msgs = await delivered(consumer, 7, timeout=60)  # 4 plain + msg-3 three times (fail, fail, ok)
        attempts = [m for m in msgs if m["body"] == "msg-3"]
        assert [m["reconsumeTimes"] for m in attempts] == [0, 1, 2], consumer.describe()
        assert [m["action"] for m in attempts] == ["fail", "fail", "ok"]
        assert [m["viaRetryTopic"] for m in attempts] == [False, True, True]
        # ali-ons shows the original topic for a retried message (from RETRY_TOPIC) and its tags survive.
        assert {m["topic"] for m in attempts} == {"AlionsRetry"} and {m["tags"] for m in attempts} == {"R"}
        assert attempts[1]["properties"]["ORIGIN_MESSAGE_ID"] == attempts[0]["msgId"]
        assert sorted(bodies(msgs)) == sorted([f"msg-{i}" for i in range(5)] + ["msg-3", "msg-3"])
        assert not unexpected_errors(consumer), consumer.describe()


async def test_broadcasting_delivers_every_message_to_every_consumer(
    alions: NodeProcesses, tmp_path: Path
) -> None:
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, "AlionsBroadcast", 4)
        consumers = [
            await alions.start_consumer(
                cluster.namesrv_addr, "CG_BC", "AlionsBroadcast", broadcast=True, options=FAST_CONSUMER
            )
            for _ in range(2)
        ]
        for c in consumers:
            await c.wait_for_event("ready", timeout=30)
        producer = await alions.start_producer(cluster.namesrv_addr, "AlionsBroadcast", count=6)
        assert (await producer.wait_for_event("done", timeout=30))["sent"] == 6
        for c in consumers:
            assert bodies(await delivered(c, 6)) == [f"msg-{i}" for i in range(6)], c.describe()
            assert not unexpected_errors(c), c.describe()


async def test_idle_consumer_survives_held_pull_timeouts(alions: NodeProcesses, tmp_path: Path) -> None:
    """ali-ons holds each pull up to 30 s and closes its whole socket when an answer is late (§1.8): the
    broker must answer held pulls (19 after ~15 s) and everything else on that socket meanwhile."""
    async with orbitmq_cluster(tmp_path) as cluster:
        await create_topic(cluster, "AlionsIdle", 2)
        # Route refresh and heartbeat every second too, so they share the socket with the held pulls.
        options = {**FAST_CONSUMER, "heartbeatBrokerInterval": 1000, "pollNameServerInteval": 1000}
        consumer = await alions.start_consumer(cluster.namesrv_addr, "CG_IDLE", "AlionsIdle", options=options)
        await consumer.wait_for_event("ready", timeout=30)
        # The thing under test is the passage of time: every held pull must time out on the broker
        # (15 s) and be re-issued, with no socket error, before anything arrives.
        await asyncio.sleep(17)
        producer = await alions.start_producer(cluster.namesrv_addr, "AlionsIdle", count=2)
        assert (await producer.wait_for_event("done", timeout=30))["sent"] == 2
        assert bodies(await delivered(consumer, 2)) == ["msg-0", "msg-1"], consumer.describe()
        assert not unexpected_errors(consumer) and not consumer.find("log", level="error"), (
            consumer.describe()
        )


async def test_message_dead_letters_after_max_reconsume_times(alions: NodeProcesses, tmp_path: Path) -> None:
    async with orbitmq_cluster(tmp_path, messageDelayLevel=SHORT_DELAYS) as cluster:
        await create_topic(cluster, "AlionsDlq", 1)
        consumer = await alions.start_consumer(
            cluster.namesrv_addr, "CG_DLQ", "AlionsDlq", options={**FAST_CONSUMER, "maxReconsumeTimes": 2},
            fail={"bodyMatches": "^poison$", "times": 99},
        )  # fmt: skip
        await consumer.wait_for_event("ready", timeout=30)
        producer = await alions.start_producer(cluster.namesrv_addr, "AlionsDlq", count=1, body="poison")
        assert (await producer.wait_for_event("done", timeout=30))["sent"] == 1
        attempts = await delivered(consumer, 3, timeout=60)
        assert [m["reconsumeTimes"] for m in attempts] == [0, 1, 2], consumer.describe()
        # The third failure's send-back carries maxReconsumeTimes 2: the broker moves it to %DLQ%CG_DLQ.
        async with asyncio.timeout(30):
            while (
                await broker_request(cluster, RequestCode.GET_MAX_OFFSET, topic="%DLQ%CG_DLQ", queueId=0)
            ).ext_fields["offset"] != "1":
                await asyncio.sleep(0.2)
        pulled = await broker_request(
            cluster, RequestCode.PULL_MESSAGE, consumerGroup="CG_DLQ_READER", topic="%DLQ%CG_DLQ", queueId=0,
            queueOffset=0, maxMsgNums=1, sysFlag=4, commitOffset=0, suspendTimeoutMillis=0, subscription="*",
            subVersion=0,
        )  # fmt: skip
        [dead] = decode_records(pulled.body_bytes())
        assert dead.body == b"poison" and dead.reconsume_times == 3
        assert dead.properties["RETRY_TOPIC"] == "AlionsDlq"
        assert len(consumer.find("msg")) == 3  # not delivered again
        assert not unexpected_errors(consumer), consumer.describe()
