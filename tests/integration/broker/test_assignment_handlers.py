"""QUERY_ASSIGNMENT (400), SET_MESSAGE_REQUEST_MODE (401), GET_ALL_MESSAGE_REQUEST_MODE (402) and the
broker's NOTIFY_MESSAGE_REQUEST_MODE_CHANGED (403) pushes, over TCP against a real broker."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson

from orbitmq.broker import BrokerApp
from orbitmq.net import Connection, DispatchTable, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

from .conftest import Cluster, until


class ModePushes:
    """Client-side handler recording every 403 push."""

    def __init__(self) -> None:
        self.pushes: list[dict[str, str]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, cmd: RemotingCommand, conn: Connection) -> None:
        self.pushes.append(dict(cmd.ext_fields))
        self.arrived.set()

    async def next(self) -> dict[str, str]:
        await asyncio.wait_for(self.arrived.wait(), 5)
        self.arrived.clear()
        return self.pushes[-1]


def consumer_client() -> tuple[RemotingClient, ModePushes]:
    pushes = ModePushes()
    dispatch = DispatchTable()
    dispatch.register(RequestCode.NOTIFY_MESSAGE_REQUEST_MODE_CHANGED, pushes)
    return RemotingClient(dispatch=dispatch), pushes


async def create_topic(cluster: Cluster, topic: str, queues: int = 8) -> None:
    r = await cluster.call(RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102",
                           readQueueNums=queues, writeQueueNums=queues, perm=6, topicFilterType="SINGLE_TAG",
                           order=False)  # fmt: skip
    assert r.code == ResponseCode.SUCCESS


async def set_mode(cluster: Cluster, topic: str, group: str, mode: str, share: int = 0) -> RemotingCommand:
    body = {"topic": topic, "consumerGroup": group, "mode": mode, "popShareQueueNum": share}
    return await cluster.call(RequestCode.SET_MESSAGE_REQUEST_MODE, orjson.dumps(body))


async def query(cluster: Cluster, topic: str, group: str, cid: str, *, strategy: str = "AVG",
                model: str = "CLUSTERING") -> Any:  # fmt: skip
    body = {"topic": topic, "consumerGroup": group, "clientId": cid, "strategyName": strategy,
            "messageModel": model}  # fmt: skip
    r = await cluster.call(RequestCode.QUERY_ASSIGNMENT, orjson.dumps(body))
    assert r.code == ResponseCode.SUCCESS, r.remark
    return orjson.loads(r.body_bytes())


def queue_ids(answer: Any, broker: str = "broker-a") -> set[int]:
    return {a["messageQueue"]["queueId"] for a in answer["messageQueueAssignments"]
            if a["messageQueue"]["brokerName"] == broker}  # fmt: skip


async def subscribe(cluster: Cluster, client: RemotingClient, group: str) -> RemotingCommand:
    r = await cluster.call(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, client=client, consumerGroup=group,
                           subscribeModeChange=True)  # fmt: skip
    assert r.code == ResponseCode.SUCCESS
    return r


async def test_modes_are_set_read_back_and_survive_a_restart(cluster: Cluster) -> None:
    await create_topic(cluster, "ModeT")
    assert (await set_mode(cluster, "ModeT", "MG", "POP", 2)).code == ResponseCode.SUCCESS
    assert (await set_mode(cluster, "ModeT", "Other", "PULL")).code == ResponseCode.SUCCESS
    everything = await cluster.call(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE)  # upstream's form: no header
    assert set(orjson.loads(everything.body_bytes())["messageRequestModeMap"]["ModeT"]) == {"MG", "Other"}
    assert everything.ext_fields["defaultMessageRequestMode"] == "PULL"
    await cluster.restart_broker()
    r = await cluster.call(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, consumerGroup="MG")
    assert orjson.loads(r.body_bytes()) == {"messageRequestModeMap": {"ModeT": {"MG": {
        "consumerGroup": "MG", "mode": "POP", "popShareQueueNum": 2, "topic": "ModeT"}}}}  # fmt: skip


async def test_bad_mode_requests_get_upstreams_codes(cluster: Cluster) -> None:
    assert (await set_mode(cluster, "%RETRY%MG", "MG", "POP")).code == ResponseCode.NO_PERMISSION
    assert (await set_mode(cluster, "bad topic!", "MG", "POP")).code == ResponseCode.INVALID_PARAMETER
    r = await cluster.call(
        RequestCode.SET_MESSAGE_REQUEST_MODE, b'{"topic":"T","consumerGroup":"G","mode":"X"}'
    )
    assert r.code == ResponseCode.SYSTEM_ERROR and "X" in (r.remark or "")
    r = await cluster.call(RequestCode.QUERY_ASSIGNMENT, b"not json")
    assert r.code == ResponseCode.SYSTEM_ERROR
    # Nothing was stored by the refused requests.
    r = await cluster.call(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE)
    assert orjson.loads(r.body_bytes()) == {"messageRequestModeMap": {}}


async def test_query_assignment_pull_pop_and_invalid(cluster: Cluster) -> None:
    await create_topic(cluster, "QaT", 8)
    second = RemotingClient()  # one connection per consumer, as real clients have
    await cluster.heartbeat("10.0.0.1@a", "QaG", {"QaT": "*"})
    await cluster.heartbeat("10.0.0.2@b", "QaG", {"QaT": "*"}, client=second)
    # PULL (the default): the AVG halves, mode PULL.
    a, b = await query(cluster, "QaT", "QaG", "10.0.0.1@a"), await query(cluster, "QaT", "QaG", "10.0.0.2@b")
    assert queue_ids(a) == {0, 1, 2, 3} and queue_ids(b) == {4, 5, 6, 7}
    assert {x["mode"] for x in a["messageQueueAssignments"]} == {"PULL"}
    by_circle = await query(cluster, "QaT", "QaG", "10.0.0.1@a", strategy="AVG_BY_CIRCLE")
    assert queue_ids(by_circle) == {0, 2, 4, 6}
    assert queue_ids(await query(cluster, "QaT", "QaG", "x@y", model="BROADCASTING")) == set(range(8))
    # POP with share 0: every client pops every queue of the broker: one entry, queue id -1.
    await set_mode(cluster, "QaT", "QaG", "POP", 0)
    pop = await query(cluster, "QaT", "QaG", "10.0.0.2@b")
    assert pop["messageQueueAssignments"] == [
        {"messageQueue": {"brokerName": "broker-a", "queueId": -1, "topic": "QaT"}, "mode": "POP"}
    ]
    # No valid result (upstream's null): the field is left out and the client keeps what it has.
    assert await query(cluster, "QaT", "QaG", "10.0.0.1@a", strategy="CONSISTENT_HASH") == {}
    assert await query(cluster, "NoSuchTopic", "QaG", "10.0.0.1@a") == {}
    assert await query(cluster, "QaT", "NobodyOnline", "10.0.0.1@a") == {}
    await second.close()


async def test_mode_change_is_pushed_only_to_subscribed_members(cluster: Cluster) -> None:
    await create_topic(cluster, "PushT")
    ours, pushes = consumer_client()
    theirs, their_pushes = consumer_client()  # an upstream client: heartbeats, never subscribes
    try:
        await cluster.heartbeat("10.0.0.1@ours", "PushG", {"PushT": "*"}, client=ours)
        await cluster.heartbeat("10.0.0.2@theirs", "PushG", {"PushT": "*"}, client=theirs)
        await subscribe(cluster, ours, "PushG")
        assert (await set_mode(cluster, "PushT", "PushG", "POP", 1)).code == ResponseCode.SUCCESS
        assert await pushes.next() == {"consumerGroup": "PushG", "topic": "PushT", "mode": "POP",
                                       "popShareQueueNum": "1", "reason": "MODE_CHANGED"}  # fmt: skip
        # Setting the same mode again changes nothing and is not pushed; a real change is.
        await set_mode(cluster, "PushT", "PushG", "POP", 1)
        await set_mode(cluster, "PushT", "PushG", "PULL")
        assert (await pushes.next())["mode"] == "PULL"
        assert len(pushes.pushes) == 2
        assert cluster.b.assignment is not None and cluster.b.assignment.notifier.sent == 2
        assert their_pushes.pushes == []
    finally:
        await ours.close()
        await theirs.close()


async def test_membership_change_pushes_to_members_whose_pop_queues_moved(cluster: Cluster) -> None:
    await create_topic(cluster, "MemT", 8)
    await create_topic(cluster, "AllT", 8)
    await set_mode(cluster, "MemT", "MemG", "POP", 1)
    await set_mode(cluster, "AllT", "MemG", "POP", 0)  # pops everything: membership never matters
    members = [consumer_client() for _ in range(4)]
    try:
        for i, (client, _) in enumerate(members[:3]):
            await cluster.heartbeat(f"10.0.0.{i}@m{i}", "MemG", {"MemT": "*", "AllT": "*"}, client=client)
            await subscribe(cluster, client, "MemG")
        for _, pushes in members[:3]:
            pushes.pushes.clear()  # the 2nd and 3rd joins already moved queues: start from here
        await cluster.heartbeat("10.0.0.3@m3", "MemG", {"MemT": "*", "AllT": "*"}, client=members[3][0])
        for _, pushes in members[:3]:
            push = await pushes.next()
            assert (push["topic"], push["reason"]) == ("MemT", "ASSIGNMENT_CHANGED")
        assert all(p["topic"] == "MemT" for _, pushes in members for p in pushes.pushes)
        # A member leaving moves queues again.
        await members[3][0].close()
        await members[0][1].next()
    finally:
        for client, _ in members:
            await client.close()


async def test_the_queue_set_spans_every_broker_of_the_route(cluster: Cluster) -> None:
    second = BrokerApp(
        dataclasses.replace(cluster.broker_config(), broker_name="broker-b"),
        dataclasses.replace(cluster.store_config, store_path_root_dir=str(cluster.root / "store-b")),
    )
    await second.start()
    try:
        await create_topic(cluster, "WideT", 4)
        ext = {"topic": "WideT", "defaultTopic": "TBW102", "readQueueNums": "2", "writeQueueNums": "2",
               "perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false"}  # fmt: skip
        r = await cluster.client.invoke(second.address, RemotingCommand.request(17, ext), 5)
        assert r.code == ResponseCode.SUCCESS
        await until(lambda: second.registration.registrations >= 2)
        await cluster.heartbeat("10.0.0.1@a", "WideG", {"WideT": "*"})
        await set_mode(cluster, "WideT", "WideG", "POP", -1)
        answer = await query(cluster, "WideT", "WideG", "10.0.0.1@a")
        assert {(a["messageQueue"]["brokerName"], a["messageQueue"]["queueId"])
                for a in answer["messageQueueAssignments"]} == {("broker-a", -1), ("broker-b", -1)}  # fmt: skip
        await set_mode(cluster, "WideT", "WideG", "PULL")
        pull = await query(cluster, "WideT", "WideG", "10.0.0.1@a")
        assert queue_ids(pull, "broker-a") == {0, 1, 2, 3} and queue_ids(pull, "broker-b") == {0, 1}
    finally:
        await second.stop()
