"""A broker restarted on the same directory keeps its topics, messages, consumer offsets, subscription
groups and delay-delivery progress; a due delayed message is delivered exactly once across a clean restart."""

from __future__ import annotations

import orjson

from orbitmq.protocol.codes import RequestCode, ResponseCode

from .conftest import SYS_SUBSCRIPTION, SYS_SUSPEND, Cluster, until


async def test_restart_keeps_topics_messages_and_offsets(cluster: Cluster) -> None:
    r = await cluster.call(RequestCode.UPDATE_AND_CREATE_TOPIC, topic="Kept", defaultTopic="TBW102",
                           readQueueNums=2, writeQueueNums=2, perm=6, topicFilterType="SINGLE_TAG", order=False)  # fmt: skip
    assert r.code == ResponseCode.SUCCESS
    for i in range(3):
        assert (await cluster.send("Kept", f"k{i}".encode(), keys=f"key{i}", queue_id=1)).code == 0
    commit = await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="KG", topic="Kept", queueId=1,
                                commitOffset=0)  # fmt: skip
    assert commit.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST  # nobody created KG yet
    group = {"groupName": "KG", "retryMaxTimes": 3}
    assert (
        await cluster.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, orjson.dumps(group))
    ).code == 0
    commit = await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="KG", topic="Kept", queueId=1,
                                commitOffset=2)  # fmt: skip
    assert commit.code == ResponseCode.SUCCESS

    await cluster.restart_broker()

    tc = cluster.b.topics.select_topic_config("Kept")
    assert tc is not None and tc.read_queue_nums == 2
    kg = cluster.b.subscription_groups.get("KG")
    assert kg is not None and kg.retry_max_times == 3
    q = await cluster.call(RequestCode.QUERY_CONSUMER_OFFSET, consumerGroup="KG", topic="Kept", queueId=1)
    assert q.code == ResponseCode.SUCCESS and q.ext_fields["offset"] == "2"
    response, records = await cluster.pull("Kept", 1, 2, group="KG")
    assert response.code == 0 and [m.body for m in records] == [b"k2"]
    found = await cluster.call(RequestCode.QUERY_MESSAGE, topic="Kept", key="key0", maxNum=4, beginTimestamp=0,
                               endTimestamp=2**62)  # fmt: skip
    assert found.code == ResponseCode.SUCCESS
    # The restarted broker registered again under the same address.
    route = await cluster.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, to="ns", topic="Kept")
    assert route.code == 0 and cluster.b.address in route.body_bytes().decode()
    # New sends continue the queue.
    assert (await cluster.send("Kept", b"k3", queue_id=1)).ext_fields["queueOffset"] == "3"


async def test_delayed_message_survives_a_restart_and_is_delivered_once(cluster: Cluster) -> None:
    assert (await cluster.send("DelayKept", b"before", props={"DELAY": "1"})).code == 0
    # Delivered before the restart: the progress is persisted, so it is not delivered again after it.
    response, _ = await cluster.pull("DelayKept", 0, 0, sys_flag=SYS_SUBSCRIPTION | SYS_SUSPEND)
    assert response.code == ResponseCode.SUCCESS
    await until(lambda: cluster.b.delay_offsets.offset(1) == 1)
    # Sent just before the restart: not due yet, delivered by the restarted broker.
    assert (await cluster.send("DelayKept", b"pending", props={"DELAY": "1"})).code == 0

    await cluster.restart_broker()

    assert cluster.b.delay_offsets.offset(1) == 1  # loaded from config/delayOffset.json
    response, records = await cluster.pull("DelayKept", 0, 1, sys_flag=SYS_SUBSCRIPTION | SYS_SUSPEND)
    assert response.code == ResponseCode.SUCCESS and [m.body for m in records] == [b"pending"]
    await until(lambda: cluster.b.delay_offsets.offset(1) == 2)
    assert cluster.b.schedule is not None
    assert await cluster.b.schedule.deliver_level(1) is None  # nothing left to deliver
    assert cluster.b.store.max_offset_in_queue("DelayKept", 0) == 2  # each delivered exactly once
