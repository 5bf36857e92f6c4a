"""Sending (SEND_MESSAGE 10, SEND_MESSAGE_V2 310, SEND_BATCH_MESSAGE 320) and reading back what was sent:
pull, VIEW_MESSAGE_BY_ID, QUERY_MESSAGE (remoting-protocol §2.4, §4)."""

from __future__ import annotations

import asyncio
import dataclasses

from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.record import decode_offset_msg_id, decode_records, encode_batch_body

from .conftest import SYS_SUBSCRIPTION, Cluster, until


async def test_round_trip_with_tags_and_keys(cluster: Cluster) -> None:
    sent = []
    for i, tag in enumerate(["TagA", "TagB", "TagA"]):
        r = await cluster.send("RoundTrip", f"body-{i}".encode(), tags=tag, keys=f"k{i} shared", queue_id=1)
        assert r.code == ResponseCode.SUCCESS, r.remark
        assert r.ext_fields["queueId"] == "1" and r.ext_fields["queueOffset"] == str(i)
        assert r.ext_fields["MSG_REGION"] == "DefaultRegion" and r.ext_fields["TRACE_ON"] == "true"
        sent.append(r.ext_fields)

    resp, records = await cluster.pull("RoundTrip", 1, 0, subscription="TagA")
    assert resp.code == ResponseCode.SUCCESS
    assert [r.body for r in records] == [b"body-0", b"body-2"]
    assert resp.ext_fields["nextBeginOffset"] == "3"  # past the filtered-out TagB message too
    assert resp.ext_fields["minOffset"] == "0" and resp.ext_fields["maxOffset"] == "3"
    first = records[0]
    assert first.topic == "RoundTrip" and first.queue_id == 1 and first.queue_offset == 0
    assert first.properties["TAGS"] == "TagA" and first.keys == ["k0", "shared"]
    assert first.properties["CLUSTER"] == "DefaultCluster"
    assert first.uniq_key == sent[0]["transactionId"]  # the broker made a UNIQ_KEY (ali-ons sends none)
    assert first.offset_msg_id == sent[0]["msgId"]
    assert first.store_host == ("127.0.0.1", cluster.b.port)

    # VIEW_MESSAGE_BY_ID with the offset decoded from the send's msgId gives the same record back.
    _, _, phy = decode_offset_msg_id(sent[1]["msgId"])
    view = await cluster.call(RequestCode.VIEW_MESSAGE_BY_ID, offset=phy)
    assert view.code == ResponseCode.SUCCESS
    [viewed] = decode_records(view.body_bytes())
    assert viewed.body == b"body-1" and viewed.physical_offset == phy

    # QUERY_MESSAGE by key and by unique key.
    q = await cluster.call(RequestCode.QUERY_MESSAGE, topic="RoundTrip", key="shared", maxNum=32,
                           beginTimestamp=0, endTimestamp=2**62)  # fmt: skip
    assert q.code == ResponseCode.SUCCESS
    assert sorted(r.body for r in decode_records(q.body_bytes())) == [b"body-0", b"body-1", b"body-2"]
    u = await cluster.call(RequestCode.QUERY_MESSAGE, topic="RoundTrip", key=first.uniq_key, maxNum=1,
                           beginTimestamp=0, endTimestamp=2**62, _UNIQUE_KEY_QUERY=True)  # fmt: skip
    assert [r.body for r in decode_records(u.body_bytes())] == [b"body-0"]
    missing = await cluster.call(RequestCode.QUERY_MESSAGE, topic="RoundTrip", key="nope", maxNum=32,
                                 beginTimestamp=0, endTimestamp=2**62)  # fmt: skip
    assert missing.code == ResponseCode.QUERY_NOT_FOUND
    gone = await cluster.call(RequestCode.VIEW_MESSAGE_BY_ID, offset=10**9)
    assert gone.code == ResponseCode.SYSTEM_ERROR


async def test_send_message_v1_header_and_random_queue(cluster: Cluster) -> None:
    r = await cluster.send("V1Topic", b"v1", tags="T", code=RequestCode.SEND_MESSAGE, queueId=-1)
    assert r.code == ResponseCode.SUCCESS, r.remark
    qid = int(r.ext_fields["queueId"])
    assert 0 <= qid < 4  # a negative queue id: the broker picks one of the topic's 4 write queues
    _, records = await cluster.pull("V1Topic", qid, 0)
    assert [m.body for m in records] == [b"v1"]


async def test_auto_created_topic_becomes_routable(cluster: Cluster) -> None:
    assert (await cluster.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, to="ns", topic="Fresh")).code == 17
    assert (await cluster.send("Fresh")).code == ResponseCode.SUCCESS
    tc = cluster.b.topics.select_topic_config("Fresh")
    assert tc is not None and tc.read_queue_nums == 4  # min(sender's d=4, TBW102's 8)

    async def routed() -> bool:
        r = await cluster.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, to="ns", topic="Fresh")
        return r.code == ResponseCode.SUCCESS

    async with asyncio.timeout(5):
        while not await routed():
            await asyncio.sleep(0.02)


async def test_send_validation(make_cluster) -> None:  # type: ignore[no-untyped-def]
    c: Cluster = await make_cluster(store_overrides={"max_message_size": 1024})
    cases = [
        (await c.send("bad topic!"), ResponseCode.INVALID_PARAMETER),
        (await c.send("SCHEDULE_TOPIC_XXXX"), ResponseCode.NO_PERMISSION),
        (await c.send("Big", b"x" * 1025), ResponseCode.MESSAGE_ILLEGAL),
        (await c.send("Q", queue_id=4), ResponseCode.INVALID_PARAMETER),
        (await c.send("Q", props={"x": "y" * 40000}), ResponseCode.MESSAGE_ILLEGAL),
    ]
    for response, code in cases:
        assert response.code == code, (response.code, response.remark)
        assert response.remark
        assert (
            response.ext_fields["MSG_REGION"] == "DefaultRegion" and response.ext_fields["TRACE_ON"] == "true"
        )
    assert (await c.send("Big", b"x" * 1024)).code == ResponseCode.SUCCESS


async def test_no_auto_create_answers_topic_not_exist(make_cluster) -> None:  # type: ignore[no-untyped-def]
    c: Cluster = await make_cluster(auto_create_topic_enable=False)
    r = await c.send("Unknown")
    assert r.code == ResponseCode.TOPIC_NOT_EXIST and "Unknown" in (r.remark or "")


async def test_batch(cluster: Cluster) -> None:
    body = encode_batch_body([(0, f"b{i}".encode(), {"TAGS": "B", "KEYS": f"bk{i}"}) for i in range(3)])
    r = await cluster.send("Batch", body, code=RequestCode.SEND_BATCH_MESSAGE, batch=True, queue_id=2)
    assert r.code == ResponseCode.SUCCESS, r.remark
    ids = r.ext_fields["msgId"].split(",")
    assert r.ext_fields["queueOffset"] == "0" and len(ids) == 3
    _, records = await cluster.pull("Batch", 2, 0)
    assert [m.body for m in records] == [b"b0", b"b1", b"b2"]
    assert [m.offset_msg_id for m in records] == ids
    assert all(m.properties["CLUSTER"] == "DefaultCluster" and m.uniq_key for m in records)
    retry = await cluster.send("%RETRY%G", body, code=RequestCode.SEND_BATCH_MESSAGE, batch=True)
    assert retry.code == ResponseCode.MESSAGE_ILLEGAL


async def test_delay_level_message_arrives_after_its_delay(cluster: Cluster) -> None:
    r = await cluster.send("Delayed", b"later", props={"DELAY": "2"}, queue_id=3)
    assert r.code == ResponseCode.SUCCESS
    # Not in its topic yet: it waits in SCHEDULE_TOPIC_XXXX queue 1 (level 2).
    now, _ = await cluster.pull("Delayed", 3, 0, sys_flag=SYS_SUBSCRIPTION)
    assert now.code == ResponseCode.PULL_NOT_FOUND
    assert cluster.b.store.max_offset_in_queue("SCHEDULE_TOPIC_XXXX", 1) == 1
    held, records = await cluster.pull("Delayed", 3, 0, sys_flag=SYS_SUBSCRIPTION | 0x2)
    assert held.code == ResponseCode.SUCCESS
    [msg] = records
    assert msg.body == b"later" and msg.topic == "Delayed" and msg.queue_id == 3
    assert msg.properties["REAL_TOPIC"] == "Delayed" and "DELAY" not in msg.properties
    assert msg.born_timestamp == 1_700_000_000_000
    await until(lambda: cluster.b.delay_offsets.offset(2) == 1)


async def test_broker_config_is_frozen_dataclass(cluster: Cluster) -> None:
    # The address the broker registers is brokerIP1 and the real port (listenPort 0 picked one).
    assert cluster.b.address == f"127.0.0.1:{cluster.b.port}" and cluster.b.port != 0
    assert dataclasses.is_dataclass(cluster.b.config)
