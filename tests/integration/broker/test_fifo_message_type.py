"""The topic attribute ``message.type`` over raw remoting (no AdminClient): set at create, changed at
update, persisted, and sends validated against it when ``enableTopicMessageTypeCheck`` is on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

from .conftest import Cluster


async def create(cluster: Cluster, topic: str, attributes: str | None) -> RemotingCommand:
    return await cluster.call(
        RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102", readQueueNums=2,
        writeQueueNums=2, perm=6, topicFilterType="SINGLE_TAG", order=False, attributes=attributes,
    )  # fmt: skip


async def attributes_of(cluster: Cluster, topic: str) -> dict[str, str]:
    r = await cluster.call(RequestCode.GET_TOPIC_CONFIG, topic=topic)
    assert r.code == ResponseCode.SUCCESS, r.remark
    return orjson.loads(r.body_bytes())["attributes"]  # type: ignore[no-any-return]


FIFO = {"__SHARDINGKEY": "order-1"}
DELAY = {"TIMER_DELAY_SEC": "5"}
TRANSACTION = {"TRAN_MSG": "true", "PGROUP": "PG"}


async def test_message_type_is_set_changed_and_persisted(
    make_cluster: Callable[..., Awaitable[Cluster]],
) -> None:
    cluster = await make_cluster()
    assert (await create(cluster, "Typed", "+message.type=FIFO")).code == ResponseCode.SUCCESS
    assert await attributes_of(cluster, "Typed") == {"message.type": "FIFO"}
    assert (await create(cluster, "Typed", "+message.type=DELAY")).code == ResponseCode.SUCCESS
    assert await attributes_of(cluster, "Typed") == {"message.type": "DELAY"}
    bad = await create(cluster, "Typed", "+message.type=ORDERLY")
    assert bad.code == ResponseCode.SYSTEM_ERROR and "value is not in set" in (bad.remark or "")
    mixed = await create(cluster, "Mixed", "+message.type=MIXED")
    assert (mixed.code, mixed.remark) == (
        ResponseCode.INVALID_PARAMETER,
        "MIXED message type is not supported.",
    )
    await cluster.restart_broker()
    assert await attributes_of(cluster, "Typed") == {"message.type": "DELAY"}


async def test_sends_are_checked_against_the_topic_type(
    make_cluster: Callable[..., Awaitable[Cluster]],
) -> None:
    cluster = await make_cluster(enable_topic_message_type_check=True, enable_mixed_message_type=True)
    for topic, kind in [("TNormal", "NORMAL"), ("TFifo", "FIFO"), ("TDelay", "DELAY"), ("TMixed", "MIXED")]:
        assert (await create(cluster, topic, f"+message.type={kind}")).code == ResponseCode.SUCCESS
    assert (await create(cluster, "TPlain", None)).code == ResponseCode.SUCCESS  # no attribute: NORMAL
    ok = [
        ("TNormal", {}),
        ("TPlain", {}),
        ("TFifo", FIFO),
        ("TDelay", DELAY),
        ("TMixed", FIFO),
        ("TMixed", {}),
    ]
    for topic, props in ok:
        r = await cluster.send(topic, props=props, queue_id=-1)
        assert r.code == ResponseCode.SUCCESS, (topic, props, r.remark)
    refused = [("TFifo", {}, "FIFO", "NORMAL"), ("TNormal", FIFO, "NORMAL", "FIFO"),
               ("TFifo", DELAY, "FIFO", "DELAY"), ("TPlain", TRANSACTION, "NORMAL", "TRANSACTION")]  # fmt: skip
    for topic, props, expected, actual in refused:
        r = await cluster.send(topic, props=props)
        assert r.code == ResponseCode.MESSAGE_ILLEGAL, (topic, props)
        assert (
            r.remark
            == f"TopicMessageType validate failed, the expected type is {expected}, but actual type is {actual}"
        )
    # Batches are typed by their header's properties (as upstream's remoting proxy does).
    batch = await cluster.send("TFifo", b"", code=RequestCode.SEND_BATCH_MESSAGE, batch=True)
    assert batch.code == ResponseCode.MESSAGE_ILLEGAL and "TopicMessageType" in (batch.remark or "")
    # Not checked: messages forwarded by a broker, and retry topics.
    forwarded = await cluster.send("TFifo", props={"TRANSFER_FLAG": "true"})
    assert forwarded.code == ResponseCode.SUCCESS
    await cluster.heartbeat("c1", "G1", {"TFifo": "*"})
    retry = await cluster.send("%RETRY%G1", props=FIFO, reconsumeTimes=1)  # a NORMAL topic
    assert retry.code == ResponseCode.SUCCESS, retry.remark


async def test_without_the_check_every_type_is_stored_as_upstreams_broker_does(cluster: Cluster) -> None:
    assert (await create(cluster, "Loose", "+message.type=FIFO")).code == ResponseCode.SUCCESS
    for props in ({}, DELAY, FIFO):
        assert (await cluster.send("Loose", props=props)).code == ResponseCode.SUCCESS
