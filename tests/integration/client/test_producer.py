from __future__ import annotations

from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import Message, MessageExt, MessageQueue, SendStatus, message_ext_from_record
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.record import decode_records

from .conftest import Cluster


async def _pull(inst: ClientInstance, mq: MessageQueue, offset: int) -> list[MessageExt]:
    route = await inst.route(mq.topic, refresh=True)
    addr = route.master_addr(mq.broker_name)
    assert addr is not None
    resp = await inst.request(
        addr,
        RequestCode.PULL_MESSAGE,
        {
            "consumerGroup": "probe",
            "topic": mq.topic,
            "queueId": mq.queue_id,
            "queueOffset": offset,
            "maxMsgNums": 32,
            "sysFlag": 4,
            "commitOffset": 0,
            "suspendTimeoutMillis": 0,
            "subscription": "*",
            "subVersion": 0,
        },
    )
    return [message_ext_from_record(r, mq.broker_name) for r in decode_records(resp.body_bytes())]


async def test_send_with_tags_keys_properties_and_compression(cluster: Cluster) -> None:
    from orbitmq.client.producer import Producer

    async with Producer("PG", [cluster.ns], compress_over=100) as p:
        small = await p.send(
            Message("TopicP", b"hello", tags="TagA", keys=["k1", "k2"], properties={"u": "v"})
        )
        big_body = b"x" * 5000
        big = await p.send(Message("TopicP", big_body, tags="TagB"))
        assert small.status is SendStatus.SEND_OK and len(small.msg_id) == 32 and small.offset_msg_id
        inst = ClientInstance([cluster.ns])
        try:
            got = {m.msg_id: m for mq in {small.queue, big.queue} for m in await _pull(inst, mq, 0)}
        finally:
            await inst.close()
    m = got[small.msg_id]
    assert (m.body, m.tags, m.keys, m.properties["u"]) == (b"hello", "TagA", ["k1", "k2"], "v")
    assert m.queue_offset == small.queue_offset and m.offset_msg_id == small.offset_msg_id
    assert got[big.msg_id].body == big_body  # decompressed on receipt


async def test_batch_oneway_async_and_orderly(cluster: Cluster) -> None:
    from orbitmq.client.producer import Producer

    async with Producer("PG", [cluster.ns]) as p:
        await p.send(Message("TopicB", b"warm-up"))  # auto-creates the topic
        batch = await p.send_batch([Message("TopicB", f"b{i}".encode()) for i in range(3)])
        assert len(batch.msg_id.split(",")) == 3
        results = []
        fut = p.send_async(Message("TopicB", b"async"), results.append)
        assert (await fut).status is SendStatus.SEND_OK
        await p.send_oneway(Message("TopicB", b"oneway"))
        orderly = [await p.send_orderly(Message("TopicB", f"o{i}".encode()), "order-7") for i in range(3)]
        assert len({r.queue for r in orderly}) == 1
        assert [r.queue_offset for r in orderly] == sorted(r.queue_offset for r in orderly)
        inst = ClientInstance([cluster.ns])
        try:
            msgs = await _pull(inst, batch.queue, batch.queue_offset)
        finally:
            await inst.close()
    assert [m.body for m in msgs[:3]] == [b"b0", b"b1", b"b2"]
    assert len(results) == 1
