"""The OrbitMQ Python SDK and the real ali-ons 3.12.0 client on one OrbitMQ cluster (servers in their own
processes): what one sends, the other receives with the same body, tags, keys, user properties and ids,
compressed bodies included, and retries and per-queue order work across the two clients.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orbitmq.client import ConsumeOrderlyContext, Message, MessageExt, Producer, PushConsumer
from orbitmq.client.model import ConsumeFromWhere
from tests.compat.alions import NodeProcesses
from tests.compat.servers import FAST_CONSUMER, create_topic, delivered, orbitmq_cluster, unexpected_errors

pytestmark = pytest.mark.slow  # servers and Node clients in their own processes: ~6 s each

SHORT_DELAYS = " ".join(["1s"] * 18)
BIG = 6000  # above both clients' compression threshold (4 KiB)


async def _until(pred, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not pred():
            await asyncio.sleep(0.05)


async def test_sdk_producer_to_alions_consumer(alions: NodeProcesses, tmp_path: Path) -> None:
    async with orbitmq_cluster(tmp_path, messageDelayLevel=SHORT_DELAYS) as cluster:
        ns = cluster.namesrv_addr
        await create_topic(cluster, "InteropToAlions", 4)
        consumer = await alions.start_consumer(
            ns, "CG_INTEROP_A", "InteropToAlions", expression="TagA||TagB", options=FAST_CONSUMER,
            fail={"bodyMatches": "^sdk-2$", "times": 1},
        )  # fmt: skip
        await consumer.wait_for_event("ready", timeout=30)
        async with Producer("PG_SDK", [ns]) as p:
            sent = {}
            for i in range(6):
                msg = Message("InteropToAlions", f"sdk-{i}".encode(), tags="TagA" if i % 2 else "TagB",
                              keys=[f"k{i}", "common"], properties={"origin": "orbitmq", "i": str(i)})  # fmt: skip
                sent[f"sdk-{i}"] = await p.send(msg)
            big = b"sdk-big-" + b"y" * BIG
            sent["big"] = await p.send(Message("InteropToAlions", big, tags="TagA"))
            await p.send(Message("InteropToAlions", b"sdk-filtered", tags="TagC"))
            batch = await p.send_batch([Message("InteropToAlions", f"sdk-batch-{i}".encode(), tags="TagB")
                                        for i in range(2)])  # fmt: skip
            await p.send_oneway(Message("InteropToAlions", b"sdk-oneway", tags="TagA"))
            orderly = await p.send_orderly(Message("InteropToAlions", b"sdk-orderly", tags="TagB"), "key-1")
        msgs = await delivered(consumer, 12, timeout=60)  # 11 matching messages + one retry of sdk-2
        by_body = {m["body"]: m for m in msgs}
        for i in range(6):
            m, s = by_body[f"sdk-{i}"], sent[f"sdk-{i}"]
            assert m["tags"] == ("TagA" if i % 2 else "TagB") and m["keys"] == f"k{i} common"
            assert m["properties"]["origin"] == "orbitmq" and m["properties"]["i"] == str(i)
            assert m["properties"]["UNIQ_KEY"] == s.msg_id  # the SDK's message id
            if i != 2:
                assert m["msgId"] == s.offset_msg_id  # the broker's id, as the send answered it
                assert (m["queueId"], m["queueOffset"]) == (s.queue.queue_id, s.queue_offset)
        big_seen = by_body[big.decode()]  # ali-ons inflated the SDK's zlib body
        assert big_seen["properties"]["UNIQ_KEY"] == sent["big"].msg_id
        retried = [m for m in msgs if m["body"] == "sdk-2"]
        assert [m["reconsumeTimes"] for m in retried] == [0, 1] and retried[1]["viaRetryTopic"]
        assert {m["properties"]["UNIQ_KEY"] for m in msgs if m["body"].startswith("sdk-batch-")} == set(
            batch.msg_id.split(",")
        )
        assert "sdk-oneway" in by_body and "sdk-filtered" not in by_body
        assert by_body["sdk-orderly"]["queueId"] == orderly.queue.queue_id
        assert not unexpected_errors(consumer), consumer.describe()


async def test_alions_producer_to_sdk_consumers(alions: NodeProcesses, tmp_path: Path) -> None:
    async with orbitmq_cluster(tmp_path, messageDelayLevel=SHORT_DELAYS) as cluster:
        ns = cluster.namesrv_addr
        await create_topic(cluster, "InteropToSdk", 4)
        await create_topic(cluster, "InteropOrdered", 4)
        got: list[MessageExt] = []

        def listener(m: MessageExt) -> bool:
            got.append(m)
            return not (m.body == b"ons-3" and m.reconsume_times == 0)  # fail once: goes through %RETRY%

        ordered: list[bytes] = []

        def orderly(m: MessageExt, ctx: ConsumeOrderlyContext) -> None:
            ordered.append(m.body)

        first = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
        c = PushConsumer("CG_SDK_B", [ns], consume_from_where=first, long_poll_s=2.0)
        c.subscribe("InteropToSdk", "TagA||TagB")
        c.register_listener(listener)
        o = PushConsumer("CG_SDK_ORD", [ns], consume_from_where=first, long_poll_s=2.0)
        o.subscribe("InteropOrdered")
        o.register_orderly_listener(orderly)
        await c.start()
        await o.start()
        try:
            producer = await alions.start_producer(
                ns, "InteropToSdk", count=8, tags=["TagA", "TagB"], keys="key-{i} common", body="ons-{i}",
                properties={"p": "v-{i}"},
            )  # fmt: skip
            big = await alions.start_producer(ns, "InteropToSdk", count=1, tags="TagA", body="ons-big-{i}",
                                              bodySize=BIG)  # fmt: skip
            other = await alions.start_producer(ns, "InteropToSdk", count=2, tags="TagC", body="ons-c-{i}")
            shard = await alions.start_producer(
                ns, "InteropOrdered", count=10, body="ord-{i}", shardingKey="same"
            )
            for proc in (producer, big, other, shard):
                done = await proc.wait_for_event("done", timeout=30)
                assert done["failed"] == 0, proc.describe()
            await _until(lambda: len(got) >= 10 and len(ordered) >= 10)
        finally:
            await c.shutdown()
            await o.shutdown()
    sent = {e["i"]: e for e in producer.find("sent")}
    by_body: dict[bytes, list[MessageExt]] = {}
    for m in got:
        by_body.setdefault(m.body, []).append(m)
    for i, e in sent.items():
        m = by_body[f"ons-{i}".encode()][0]
        assert m.tags == ("TagA" if i % 2 == 0 else "TagB") and m.keys == [f"key-{i}", "common"]
        assert m.properties["p"] == f"v-{i}" and m.offset_msg_id == e["msgId"]
        assert (m.queue_id, m.queue_offset) == (e["queueId"], e["queueOffset"])
        assert m.msg_id == m.properties["UNIQ_KEY"]  # ali-ons sets one too
    assert [m.reconsume_times for m in by_body[b"ons-3"]] == [0, 1]
    assert by_body[b"ons-3"][1].topic == "InteropToSdk"  # shown with its original topic, as Java does
    big_body = next(b for b in by_body if b.startswith(b"ons-big-"))
    assert len(big_body) == BIG  # the SDK inflated ali-ons' zlib body
    assert not any(b.startswith(b"ons-c-") for b in by_body)  # TagC filtered
    assert ordered == [f"ord-{i}".encode() for i in range(10)]  # one queue, in send order
