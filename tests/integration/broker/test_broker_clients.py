"""Client registration (remoting-protocol §2.5-§2.6, pop-and-storage §4): heartbeat, consumer list,
NOTIFY_CONSUMER_IDS_CHANGED pushes, unregister, connection close, locks, expiry."""

from __future__ import annotations

import asyncio

import orjson

from orbitmq.core.clock import FakeClock
from orbitmq.net import Connection, DispatchTable, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

from .conftest import Cluster, until


class Notifications:
    """A client-side handler for NOTIFY_CONSUMER_IDS_CHANGED that records each push."""

    def __init__(self) -> None:
        self.groups: list[str] = []
        self.flags: list[int] = []
        self.arrived = asyncio.Event()

    async def __call__(self, cmd: RemotingCommand, conn: Connection) -> None:
        self.groups.append(cmd.ext_fields["consumerGroup"])
        self.flags.append(cmd.flag)
        self.arrived.set()
        return None

    async def next(self) -> str:
        await asyncio.wait_for(self.arrived.wait(), 5)
        self.arrived.clear()
        return self.groups[-1]


def client_with(notes: Notifications) -> RemotingClient:
    dispatch = DispatchTable()
    dispatch.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, notes)
    return RemotingClient(dispatch=dispatch)


async def consumer_ids(cluster: Cluster, group: str) -> list[str] | int:
    r = await cluster.call(RequestCode.GET_CONSUMER_LIST_BY_GROUP, consumerGroup=group)
    return orjson.loads(r.body_bytes())["consumerIdList"] if r.code == 0 else r.code


async def test_heartbeat_registers_and_makes_the_retry_topic_routable(cluster: Cluster) -> None:
    r = await cluster.heartbeat("10.0.0.1@c1", "HbG", {"HbTopic": "*"})
    assert r.code == ResponseCode.SUCCESS
    assert r.version >= 232  # Java clients need a realistic broker version (SQL92 needs >= V4_1_0)
    assert "IS_SUPPORT_HEART_BEAT_V2" not in r.ext_fields
    # Synchronous registration: the consumer list right after the heartbeat contains the client.
    assert await consumer_ids(cluster, "HbG") == ["10.0.0.1@c1"]
    # %RETRY%<group> exists and the NameServer already routes it (no 30-s wait for the next registration).
    route = await cluster.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, to="ns", topic="%RETRY%HbG")
    assert route.code == ResponseCode.SUCCESS
    assert orjson.loads(route.body_bytes())["queueDatas"][0]["readQueueNums"] == 1
    assert await consumer_ids(cluster, "NobodyHere") == ResponseCode.SYSTEM_ERROR


async def test_membership_changes_are_pushed_to_the_group(cluster: Cluster) -> None:
    notes1, notes2 = Notifications(), Notifications()
    c1, c2 = client_with(notes1), client_with(notes2)
    try:
        await cluster.heartbeat("ip@one", "PushG", {"PushT": "*"}, client=c1)
        assert await notes1.next() == "PushG"  # a new channel joined (itself)
        await cluster.heartbeat("ip@two", "PushG", {"PushT": "*"}, client=c2)
        assert await notes1.next() == "PushG" and await notes2.next() == "PushG"
        assert notes1.flags[-1] & 0x2  # oneway
        assert await consumer_ids(cluster, "PushG") == ["ip@one", "ip@two"]
        # A repeated heartbeat with nothing new notifies nobody.
        before = len(notes1.groups)
        await cluster.heartbeat("ip@one", "PushG", {"PushT": "*"}, client=c1)
        assert len(notes1.groups) == before
        # UNREGISTER_CLIENT removes the member and tells the rest.
        r = await cluster.call(
            RequestCode.UNREGISTER_CLIENT, client=c2, clientID="ip@two", consumerGroup="PushG"
        )
        assert r.code == ResponseCode.SUCCESS
        assert await notes1.next() == "PushG"
        assert await consumer_ids(cluster, "PushG") == ["ip@one"]
        # Closing the connection does the same.
        await cluster.heartbeat("ip@two", "PushG", {"PushT": "*"}, client=c2)
        await notes1.next()
        await c2.close()
        assert await notes1.next() == "PushG"
        await until(lambda: cluster.b.consumers.consumer_ids("PushG") == ["ip@one"])
    finally:
        await c1.close()
        await c2.close()


async def test_broadcasting_groups_are_not_notified(cluster: Cluster) -> None:
    notes = Notifications()
    c = client_with(notes)
    try:
        await cluster.heartbeat("ip@b1", "BcG", {"BcT": "*"}, client=c, model="BROADCASTING")
        assert await consumer_ids(cluster, "BcG") == ["ip@b1"]
        await asyncio.sleep(0.05)
        assert notes.groups == []
    finally:
        await c.close()


async def test_producer_heartbeat_and_unregister(cluster: Cluster) -> None:
    r = await cluster.heartbeat("ip@p", "", producer_group="ProdG")
    assert r.code == ResponseCode.SUCCESS and cluster.b.producers.group_online("ProdG")
    await cluster.call(RequestCode.UNREGISTER_CLIENT, clientID="ip@p", producerGroup="ProdG")
    assert not cluster.b.producers.group_online("ProdG")


async def test_lock_and_unlock_batch(cluster: Cluster) -> None:
    mqs = [{"topic": "OrderT", "brokerName": "broker-a", "queueId": q} for q in range(2)]

    async def lock(client_id: str) -> list[int]:
        body = {"consumerGroup": "LockG", "clientId": client_id, "onlyThisBroker": False, "mqSet": mqs}
        r = await cluster.call(RequestCode.LOCK_BATCH_MQ, orjson.dumps(body))
        assert r.code == ResponseCode.SUCCESS
        return sorted(q["queueId"] for q in orjson.loads(r.body_bytes())["lockOKMQSet"])

    assert await lock("a") == [0, 1]
    assert await lock("b") == []
    body = {"consumerGroup": "LockG", "clientId": "a", "mqSet": mqs[:1]}
    assert (await cluster.call(RequestCode.UNLOCK_BATCH_MQ, orjson.dumps(body))).code == 0
    assert await lock("b") == [0]
    bad = await cluster.call(RequestCode.LOCK_BATCH_MQ, b"not json")
    assert bad.code == ResponseCode.SYSTEM_ERROR


async def test_malformed_heartbeat_is_an_error_not_a_crash(cluster: Cluster) -> None:
    r = await cluster.call(RequestCode.HEART_BEAT, b'{"consumerDataSet": []}')
    assert r.code == ResponseCode.SYSTEM_ERROR and "clientID" in (r.remark or "")
    assert (await cluster.heartbeat("ip@ok", "AfterG", {"T": "*"})).code == 0


async def test_silent_clients_expire(make_cluster) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    c: Cluster = await make_cluster(clock=clock)
    await c.heartbeat("ip@quiet", "ExpG", {"ExpT": "*"}, producer_group="ExpP")
    assert c.b.consumers.consumer_ids("ExpG") == ["ip@quiet"]
    await clock.advance(60)
    assert c.b.consumers.consumer_ids("ExpG") == ["ip@quiet"]
    await clock.advance(80)  # 140 s without a heartbeat > channelExpiredTimeout (120 s)
    await until(lambda: c.b.consumers.consumer_ids("ExpG") == [])
    assert not c.b.producers.group_online("ExpP")
