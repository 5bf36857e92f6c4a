"""A real NamesrvApp on port 0, driven over TCP by a RemotingClient (remoting-protocol.md 2.3, 5.1, 5.6)."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import ConfigError
from orbitmq.core.service import ServiceState
from orbitmq.namesrv import NamesrvApp, NamesrvConfig
from orbitmq.namesrv.bodies import RegisterBrokerBody, encode_register_broker_body
from orbitmq.namesrv.routes import DataVersion, TopicConfig
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

T = 3.0  # request timeout, seconds
TOPICS = (TopicConfig("TopicTest", 4, 4), TopicConfig("TBW102", 8, 8, 7))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[NamesrvApp]:
    a = NamesrvApp(NamesrvConfig(port=0), clock=clock)
    await a.start()
    yield a
    await a.stop()


@pytest.fixture
async def client() -> AsyncIterator[RemotingClient]:
    c = RemotingClient()
    yield c
    await c.close()


async def call(
    client: RemotingClient, app: NamesrvApp, code: int, body: bytes = b"", **fields: Any
) -> RemotingCommand:
    ext = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
    return await client.invoke(app.addr, RemotingCommand.request(code, ext, body), T)


async def register(
    client: RemotingClient,
    app: NamesrvApp,
    name: str = "broker-a",
    addr: str = "127.0.0.1:10911",
    *,
    cluster: str = "DefaultCluster",
    broker_id: int = 0,
    topics: tuple[TopicConfig, ...] = TOPICS,
    counter: int = 1,
    compressed: bool = False,
) -> RemotingCommand:
    body = encode_register_broker_body(
        RegisterBrokerBody(DataVersion(0, 1, counter), topics), compressed=compressed
    )
    return await call(
        client,
        app,
        RequestCode.REGISTER_BROKER,
        body,
        brokerName=name,
        brokerAddr=addr,
        clusterName=cluster,
        haServerAddr=addr.rsplit(":", 1)[0] + ":10912",
        brokerId=broker_id,
        compressed=compressed,
        bodyCrc32=zlib.crc32(body) & 0x7FFFFFFF,
        enableActingMaster=False,
        heartbeatTimeoutMillis=120_000,
    )


async def route(client: RemotingClient, app: NamesrvApp, topic: str) -> RemotingCommand:
    return await call(client, app, RequestCode.GET_ROUTEINFO_BY_TOPIC, topic=topic)


async def test_registered_broker_gives_a_route_of_the_exact_shape(
    app: NamesrvApp, client: RemotingClient
) -> None:
    resp = await register(client, app)
    assert resp.code == ResponseCode.SUCCESS
    assert resp.ext_fields == {} and resp.body_bytes() == b""  # a master has no master/HA address to learn
    r = await route(client, app, "TopicTest")
    assert r.code == ResponseCode.SUCCESS
    assert b'"brokerAddrs":{"0":"127.0.0.1:10911"}' in r.body_bytes()  # quoted keys: every client reads them
    assert orjson.loads(r.body_bytes()) == {
        "brokerDatas": [
            {
                "brokerAddrs": {"0": "127.0.0.1:10911"},
                "brokerName": "broker-a",
                "cluster": "DefaultCluster",
                "enableActingMaster": False,
            }
        ],
        "filterServerTable": {},
        "queueDatas": [
            {"brokerName": "broker-a", "perm": 6, "readQueueNums": 4, "topicSysFlag": 0, "writeQueueNums": 4}
        ],
    }


async def test_accept_standard_json_only_gets_the_same_body(app: NamesrvApp, client: RemotingClient) -> None:
    await register(client, app)
    a = await route(client, app, "TopicTest")
    b = await call(
        client, app, RequestCode.GET_ROUTEINFO_BY_TOPIC, topic="TopicTest", acceptStandardJsonOnly=True
    )
    assert a.body_bytes() == b.body_bytes()


async def test_unknown_topic_is_topic_not_exist(app: NamesrvApp, client: RemotingClient) -> None:
    r = await route(client, app, "Nope")
    assert r.code == ResponseCode.TOPIC_NOT_EXIST
    assert r.remark == "No topic route info in name server for the topic: Nope"


async def test_missing_topic_header_is_a_system_error(app: NamesrvApp, client: RemotingClient) -> None:
    r = await call(client, app, RequestCode.GET_ROUTEINFO_BY_TOPIC)
    assert r.code == ResponseCode.SYSTEM_ERROR and "topic" in (r.remark or "")


async def test_compressed_registration_from_a_java_5_broker(app: NamesrvApp, client: RemotingClient) -> None:
    assert (await register(client, app, compressed=True)).code == ResponseCode.SUCCESS
    body = orjson.loads((await route(client, app, "TBW102")).body_bytes())
    assert body["queueDatas"] == [
        {"brokerName": "broker-a", "perm": 7, "readQueueNums": 8, "topicSysFlag": 0, "writeQueueNums": 8}
    ]


async def test_crc_mismatch_and_bad_body_are_refused(app: NamesrvApp, client: RemotingClient) -> None:
    fields = dict(brokerName="b", brokerAddr="127.0.0.1:1", clusterName="c", haServerAddr="", brokerId=0)
    r = await call(client, app, RequestCode.REGISTER_BROKER, b"{}", bodyCrc32=12345, **fields)
    assert (r.code, r.remark) == (ResponseCode.SYSTEM_ERROR, "crc32 not match")
    r = await call(client, app, RequestCode.REGISTER_BROKER, b"\x00garbage", compressed=True, **fields)
    assert r.code == ResponseCode.SYSTEM_ERROR and "RegisterBrokerBody" in (r.remark or "")
    assert app.routes.brokers == {}
    # The connection survives bad requests.
    assert (await route(client, app, "x")).code == ResponseCode.TOPIC_NOT_EXIST


async def test_two_brokers_and_a_slave_in_one_cluster(app: NamesrvApp, client: RemotingClient) -> None:
    await register(client, app, "broker-b", "127.0.0.2:10911")
    await register(client, app, "broker-a", "127.0.0.1:10911")
    slave = await register(client, app, "broker-a", "127.0.0.1:10921", broker_id=1)
    assert slave.ext_fields == {"haServerAddr": "127.0.0.1:10912", "masterAddr": "127.0.0.1:10911"}
    body = orjson.loads((await route(client, app, "TopicTest")).body_bytes())
    assert [(b["brokerName"], b["brokerAddrs"]) for b in body["brokerDatas"]] == [
        ("broker-a", {"0": "127.0.0.1:10911", "1": "127.0.0.1:10921"}),
        ("broker-b", {"0": "127.0.0.2:10911"}),
    ]
    assert [q["brokerName"] for q in body["queueDatas"]] == ["broker-a", "broker-b"]

    info = await call(client, app, RequestCode.GET_BROKER_CLUSTER_INFO)
    assert info.code == ResponseCode.SUCCESS
    assert orjson.loads(info.body_bytes()) == {
        "brokerAddrTable": {
            "broker-a": {
                "brokerAddrs": {"0": "127.0.0.1:10911", "1": "127.0.0.1:10921"},
                "brokerName": "broker-a",
                "cluster": "DefaultCluster",
                "enableActingMaster": False,
            },
            "broker-b": {
                "brokerAddrs": {"0": "127.0.0.2:10911"},
                "brokerName": "broker-b",
                "cluster": "DefaultCluster",
                "enableActingMaster": False,
            },
        },
        "clusterAddrTable": {"DefaultCluster": ["broker-a", "broker-b"]},
    }


async def test_topic_lists(app: NamesrvApp, client: RemotingClient) -> None:
    await register(
        client, app, "a1", "127.0.0.1:1", cluster="c1", topics=(TopicConfig("t1"), TopicConfig("shared"))
    )
    await register(
        client, app, "b1", "127.0.0.1:2", cluster="c2", topics=(TopicConfig("t2"), TopicConfig("shared"))
    )
    all_topics = await call(client, app, RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)
    assert orjson.loads(all_topics.body_bytes()) == {"topicList": ["shared", "t1", "t2"]}
    c1 = await call(client, app, RequestCode.GET_TOPICS_BY_CLUSTER, cluster="c1")
    assert orjson.loads(c1.body_bytes()) == {"topicList": ["shared", "t1"]}
    system = await call(client, app, RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS)
    assert orjson.loads(system.body_bytes()) == {
        "brokerAddr": "127.0.0.1:1",
        "topicList": ["c1", "a1", "c2", "b1"],
    }


async def test_topic_lists_can_be_disabled(client: RemotingClient) -> None:
    app = NamesrvApp(NamesrvConfig(port=0, enable_all_topic_list=False, enable_topic_list=False))
    await app.start()
    try:
        r = await call(client, app, RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)
        assert (r.code, r.remark) == (ResponseCode.SYSTEM_ERROR, "disable")
        r = await call(client, app, RequestCode.GET_TOPICS_BY_CLUSTER, cluster="c")
        assert (r.code, r.remark) == (ResponseCode.SYSTEM_ERROR, "disable")
    finally:
        await app.stop()


async def test_delete_topic(app: NamesrvApp, client: RemotingClient) -> None:
    await register(client, app, "a1", "127.0.0.1:1", cluster="c1")
    await register(client, app, "b1", "127.0.0.1:2", cluster="c2")
    r = await call(client, app, RequestCode.DELETE_TOPIC_IN_NAMESRV, topic="TopicTest", clusterName="c1")
    assert r.code == ResponseCode.SUCCESS
    body = orjson.loads((await route(client, app, "TopicTest")).body_bytes())
    assert [q["brokerName"] for q in body["queueDatas"]] == ["b1"]
    await call(client, app, RequestCode.DELETE_TOPIC_IN_NAMESRV, topic="TopicTest")
    assert (await route(client, app, "TopicTest")).code == ResponseCode.TOPIC_NOT_EXIST
    assert (await route(client, app, "TBW102")).code == ResponseCode.SUCCESS


async def test_register_topic_in_namesrv(app: NamesrvApp, client: RemotingClient) -> None:
    await register(client, app)
    qd = {"brokerName": "broker-a", "perm": 6, "readQueueNums": 2, "topicSysFlag": 0, "writeQueueNums": 2}
    body = orjson.dumps({"brokerDatas": [], "queueDatas": [qd]})
    assert (await call(client, app, RequestCode.REGISTER_TOPIC_IN_NAMESRV, body, topic="New")).code == 0
    assert orjson.loads((await route(client, app, "New")).body_bytes())["queueDatas"] == [qd]


async def test_unregister_broker(app: NamesrvApp, client: RemotingClient) -> None:
    await register(client, app)
    r = await call(
        client,
        app,
        RequestCode.UNREGISTER_BROKER,
        brokerName="broker-a",
        brokerAddr="127.0.0.1:10911",
        clusterName="DefaultCluster",
        brokerId=0,
    )
    assert r.code == ResponseCode.SUCCESS
    assert (await route(client, app, "TopicTest")).code == ResponseCode.TOPIC_NOT_EXIST
    info = orjson.loads((await call(client, app, RequestCode.GET_BROKER_CLUSTER_INFO)).body_bytes())
    assert info == {"brokerAddrTable": {}, "clusterAddrTable": {}}


async def test_wipe_and_add_write_perm(app: NamesrvApp, client: RemotingClient) -> None:
    await register(client, app)
    r = await call(client, app, RequestCode.WIPE_WRITE_PERM_OF_BROKER, brokerName="broker-a")
    assert r.ext_fields == {"wipeTopicCount": "2"}
    assert orjson.loads((await route(client, app, "TopicTest")).body_bytes())["queueDatas"][0]["perm"] == 4
    r = await call(client, app, RequestCode.ADD_WRITE_PERM_OF_BROKER, brokerName="broker-a")
    assert r.ext_fields == {"addTopicCount": "2"}
    assert orjson.loads((await route(client, app, "TopicTest")).body_bytes())["queueDatas"][0]["perm"] == 6


async def test_query_data_version(app: NamesrvApp, client: RemotingClient) -> None:
    fields = dict(
        brokerName="broker-a", brokerAddr="127.0.0.1:10911", clusterName="DefaultCluster", brokerId=0
    )
    v1 = orjson.dumps(DataVersion(0, 1, 1).to_json())
    r = await call(client, app, RequestCode.QUERY_DATA_VERSION, v1, **fields)
    assert r.ext_fields == {"changed": "true"} and r.body_bytes() == b""
    await register(client, app, counter=1)
    r = await call(client, app, RequestCode.QUERY_DATA_VERSION, v1, **fields)
    assert r.ext_fields == {"changed": "false"}
    assert orjson.loads(r.body_bytes()) == {"counter": 1, "stateVersion": 0, "timestamp": 1}
    v2 = orjson.dumps(DataVersion(0, 1, 2).to_json())
    assert (await call(client, app, RequestCode.QUERY_DATA_VERSION, v2, **fields)).ext_fields == {
        "changed": "true"
    }


async def test_kv_config(app: NamesrvApp, client: RemotingClient) -> None:
    r = await call(client, app, RequestCode.GET_KV_CONFIG, namespace="ns", key="k")
    assert (r.code, r.remark) == (ResponseCode.QUERY_NOT_FOUND, "No config item, Namespace: ns Key: k")
    assert (await call(client, app, RequestCode.PUT_KV_CONFIG, namespace="ns", key="k", value="v")).code == 0
    r = await call(client, app, RequestCode.GET_KV_CONFIG, namespace="ns", key="k")
    assert (r.code, r.ext_fields) == (ResponseCode.SUCCESS, {"value": "v"})
    r = await call(client, app, RequestCode.GET_KVLIST_BY_NAMESPACE, namespace="ns")
    assert orjson.loads(r.body_bytes()) == {"table": {"k": "v"}}
    assert (await call(client, app, RequestCode.DELETE_KV_CONFIG, namespace="ns", key="k")).code == 0
    r = await call(client, app, RequestCode.GET_KV_CONFIG, namespace="ns", key="k")
    assert r.code == ResponseCode.QUERY_NOT_FOUND
    r = await call(client, app, RequestCode.GET_KVLIST_BY_NAMESPACE, namespace="ns")
    assert r.code == ResponseCode.QUERY_NOT_FOUND
    r = await call(client, app, RequestCode.PUT_KV_CONFIG, namespace="ns", key="k")
    assert r.code == ResponseCode.SYSTEM_ERROR  # value is required


async def test_order_topic_config_goes_to_brokers_and_routes(client: RemotingClient) -> None:
    app = NamesrvApp(NamesrvConfig(port=0, order_message_enable=True))
    await app.start()
    try:
        await call(
            client,
            app,
            RequestCode.PUT_KV_CONFIG,
            namespace="ORDER_TOPIC_CONFIG",
            key="TopicTest",
            value="broker-a:4",
        )
        resp = await register(client, app)
        assert orjson.loads(resp.body_bytes()) == {"table": {"TopicTest": "broker-a:4"}}
        assert (
            orjson.loads((await route(client, app, "TopicTest")).body_bytes())["orderTopicConf"]
            == "broker-a:4"
        )
    finally:
        await app.stop()


async def test_unknown_request_code_is_not_supported(app: NamesrvApp, client: RemotingClient) -> None:
    r = await call(client, app, RequestCode.SEND_MESSAGE_V2)
    assert r.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED


async def test_silent_broker_expires_on_the_fake_clock(
    app: NamesrvApp, client: RemotingClient, clock: FakeClock
) -> None:
    broker_a, broker_b = RemotingClient(), RemotingClient()
    try:
        await register(broker_a, app, "broker-a", "127.0.0.1:10911")
        a_side = app.server.connections[0]
        await clock.advance(60)
        await register(broker_b, app, "broker-b", "127.0.0.2:10911")  # heard from 60 s later
        await clock.advance(60)  # the scan at +120 s: silent for exactly 120 s is not yet expired
        body = orjson.loads((await route(client, app, "TopicTest")).body_bytes())
        assert [b["brokerName"] for b in body["brokerDatas"]] == ["broker-a", "broker-b"]
        await clock.advance(10)  # the scan at +130 s: broker-a silent for 130 s > 120 s
        body = orjson.loads((await route(client, app, "TopicTest")).body_bytes())
        assert [b["brokerName"] for b in body["brokerDatas"]] == ["broker-b"]
        await asyncio.wait_for(
            a_side.wait_closed(), 5
        )  # Java closes an expired broker's connection; so do we
        await clock.advance(60)
        assert (await route(client, app, "TopicTest")).code == ResponseCode.TOPIC_NOT_EXIST
    finally:
        await broker_a.close()
        await broker_b.close()


async def test_data_version_query_keeps_a_broker_alive(
    app: NamesrvApp, client: RemotingClient, clock: FakeClock
) -> None:
    await register(client, app)
    fields = dict(
        brokerName="broker-a", brokerAddr="127.0.0.1:10911", clusterName="DefaultCluster", brokerId=0
    )
    for _ in range(3):
        await clock.advance(100)
        await call(
            client,
            app,
            RequestCode.QUERY_DATA_VERSION,
            orjson.dumps(DataVersion(0, 1, 1).to_json()),
            **fields,
        )
    assert (await route(client, app, "TopicTest")).code == ResponseCode.SUCCESS


async def test_closing_the_broker_connection_unregisters_it(app: NamesrvApp) -> None:
    broker, other = RemotingClient(), RemotingClient()
    try:
        await register(broker, app, "broker-a", "10.9.9.9:10911")  # advertised address != socket peer
        await register(other, app, "broker-b", "10.9.9.8:10911")
        local = (await broker.connection(app.addr)).local_addr
        (server_side,) = [c for c in app.server.connections if c.remote_addr == local]
        await broker.close()
        await asyncio.wait_for(
            server_side.wait_closed(), 5
        )  # close callbacks (the unregistration) have run by now
        body = orjson.loads((await route(other, app, "TopicTest")).body_bytes())
        assert [b["brokerName"] for b in body["brokerDatas"]] == ["broker-b"]
    finally:
        await other.close()


async def test_two_nameservers_run_side_by_side(client: RemotingClient) -> None:
    first, second = NamesrvApp(NamesrvConfig(port=0)), NamesrvApp(NamesrvConfig(port=0))
    await first.start()
    await second.start()
    try:
        assert first.port != second.port and 0 not in (first.port, second.port)
        await register(client, first)
        await register(client, second, "broker-b", "127.0.0.2:10911")
        one = orjson.loads((await route(client, first, "TopicTest")).body_bytes())
        two = orjson.loads((await route(client, second, "TopicTest")).body_bytes())
        assert [b["brokerName"] for b in one["brokerDatas"]] == ["broker-a"]
        assert [b["brokerName"] for b in two["brokerDatas"]] == ["broker-b"]
    finally:
        await first.stop()
        await second.stop()
    assert first.state is ServiceState.STOPPED and second.expiry.state is ServiceState.STOPPED


async def test_port_in_use_fails_start_cleanly(app: NamesrvApp) -> None:
    clash = NamesrvApp(NamesrvConfig(port=app.port))
    with pytest.raises(ConfigError, match="listenPort"):
        await clash.start()
    await clash.stop()
    assert clash.state is ServiceState.STOPPED and clash.expiry.state is ServiceState.NEW
