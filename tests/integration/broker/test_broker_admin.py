"""Admin requests, consumer offsets and NameServer registration (remoting-protocol §2.3, §2.6, §2.7)."""

from __future__ import annotations

import orjson
import pytest

from orbitmq.broker import BrokerApp, BrokerConfig
from orbitmq.core.errors import ConfigError
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.store import StoreConfig

from .conftest import Cluster


async def create_topic(cluster: Cluster, topic: str, queues: int = 2, perm: int = 6) -> int:
    r = await cluster.call(RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102",
                           readQueueNums=queues, writeQueueNums=queues, perm=perm,
                           topicFilterType="SINGLE_TAG", order=False)  # fmt: skip
    return r.code


async def test_registration_lifecycle(cluster: Cluster) -> None:
    info = await cluster.call(RequestCode.GET_BROKER_CLUSTER_INFO, to="ns")
    body = fastjson.loads(info.body_bytes())
    assert body["clusterAddrTable"] == {"DefaultCluster": ["broker-a"]}
    addrs = body["brokerAddrTable"]["broker-a"]["brokerAddrs"]
    assert list(addrs.values()) == [cluster.b.address]
    assert cluster.b.registration.registrations >= 1
    await cluster.b.stop()
    cluster.broker = None
    info = await cluster.call(RequestCode.GET_BROKER_CLUSTER_INFO, to="ns")
    assert fastjson.loads(info.body_bytes())["brokerAddrTable"] == {}


async def test_topic_admin(cluster: Cluster) -> None:
    assert await create_topic(cluster, "AdminT", 3) == ResponseCode.SUCCESS
    # The topic is routable as soon as the admin call returns.
    route = await cluster.call(RequestCode.GET_ROUTEINFO_BY_TOPIC, to="ns", topic="AdminT")
    assert route.code == 0 and orjson.loads(route.body_bytes())["queueDatas"][0]["writeQueueNums"] == 3
    one = await cluster.call(RequestCode.GET_TOPIC_CONFIG, topic="AdminT")
    assert orjson.loads(one.body_bytes())["readQueueNums"] == 3
    every = orjson.loads((await cluster.call(RequestCode.GET_ALL_TOPIC_CONFIG)).body_bytes())
    assert "AdminT" in every["topicConfigTable"] and "dataVersion" in every
    assert await create_topic(cluster, "TBW102") == ResponseCode.INVALID_PARAMETER  # system topic
    assert await create_topic(cluster, "bad name") == ResponseCode.INVALID_PARAMETER

    assert (await cluster.send("AdminT", b"x")).code == 0
    deleted = await cluster.call(RequestCode.DELETE_TOPIC_IN_BROKER, topic="AdminT")
    assert deleted.code == ResponseCode.SUCCESS
    assert (
        await cluster.call(RequestCode.GET_TOPIC_CONFIG, topic="AdminT")
    ).code == ResponseCode.TOPIC_NOT_EXIST
    assert cluster.b.store.max_offset_in_queue("AdminT", 0) == 0
    sys_delete = await cluster.call(RequestCode.DELETE_TOPIC_IN_BROKER, topic="SCHEDULE_TOPIC_XXXX")
    assert sys_delete.code == ResponseCode.INVALID_PARAMETER


async def test_stats_and_connections(cluster: Cluster) -> None:
    assert await create_topic(cluster, "StatT", 2) == 0
    for _ in range(3):
        assert (await cluster.send("StatT", b"s", queue_id=1)).code == 0
    await cluster.heartbeat("ip@s1", "StatG", {"StatT": "*"})
    await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="StatG", topic="StatT", queueId=1,
                       commitOffset=2)  # fmt: skip

    stats = fastjson.loads(
        (await cluster.call(RequestCode.GET_CONSUME_STATS, consumerGroup="StatG")).body_bytes()
    )
    table = {key["queueId"]: value for key, value in stats["offsetTable"].items()}  # MessageQueue object keys
    assert table[1]["brokerOffset"] == 3 and table[1]["consumerOffset"] == 2 and table[1]["lastTimestamp"] > 0
    assert table[0]["brokerOffset"] == 0 and stats["consumeTps"] == 0.0

    topic_stats = fastjson.loads(
        (await cluster.call(RequestCode.GET_TOPIC_STATS_INFO, topic="StatT")).body_bytes()
    )
    assert {k["queueId"]: v["maxOffset"] for k, v in topic_stats["offsetTable"].items()} == {0: 0, 1: 3}

    conns = await cluster.call(RequestCode.GET_CONSUMER_CONNECTION_LIST, consumerGroup="StatG")
    body = orjson.loads(conns.body_bytes())
    assert [c["clientId"] for c in body["connectionSet"]] == ["ip@s1"]
    assert body["messageModel"] == "CLUSTERING" and "StatT" in body["subscriptionTable"]
    offline = await cluster.call(RequestCode.GET_CONSUMER_CONNECTION_LIST, consumerGroup="Ghost")
    assert offline.code == ResponseCode.CONSUMER_NOT_ONLINE

    runtime = orjson.loads((await cluster.call(RequestCode.GET_BROKER_RUNTIME_INFO)).body_bytes())["table"]
    assert int(runtime["commitLogMaxOffset"]) > 0 and runtime["brokerVersion"] == "479"
    config = await cluster.call(RequestCode.GET_BROKER_CONFIG)
    text = config.body_bytes().decode()
    assert (
        "brokerName=broker-a\n" in text
        and f"listenPort={cluster.b.port}\n" in text
        and config.ext_fields["version"]
    )
    offsets = orjson.loads((await cluster.call(RequestCode.GET_ALL_CONSUMER_OFFSET)).body_bytes())
    assert offsets["offsetTable"]["StatT@StatG"] == {"1": 2}


async def test_offset_queries(cluster: Cluster) -> None:
    assert await create_topic(cluster, "OffT", 2) == 0
    for i in range(3):
        assert (await cluster.send("OffT", f"o{i}".encode(), queue_id=0)).code == 0

    async def query(queue_id: int, **extra: object) -> tuple[int, str | None]:
        r = await cluster.call(RequestCode.QUERY_CONSUMER_OFFSET, consumerGroup="FreshG", topic="OffT",
                               queueId=queue_id, **extra)  # fmt: skip
        return r.code, r.ext_fields.get("offset")

    assert await query(0) == (ResponseCode.SUCCESS, "0")  # fresh group, queue still starts at 0
    assert await query(1) == (ResponseCode.SUCCESS, "0")  # fresh group, empty queue (4.9 behaviour)
    assert (await query(0, setZeroIfNotFound=False))[0] == ResponseCode.QUERY_NOT_FOUND

    async def position(code: int, field: str = "offset", **extra: object) -> str:
        r = await cluster.call(code, topic="OffT", queueId=0, **extra)
        assert r.code == ResponseCode.SUCCESS
        return r.ext_fields[field]

    assert await position(RequestCode.GET_MAX_OFFSET) == "3"
    assert await position(RequestCode.GET_MIN_OFFSET) == "0"
    earliest = int(await position(RequestCode.GET_EARLIEST_MSG_STORETIME, "timestamp"))
    assert earliest > 0
    assert await position(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, timestamp=0) == "0"
    assert await position(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, timestamp=2**50) == "3"
    assert (
        await position(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, timestamp=2**50, boundaryType="upper") == "2"
    )
    assert await position(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, timestamp=0, boundaryType="UPPER") == "0"

    await cluster.heartbeat("ip@o", "FreshG", {"OffT": "*"})
    for offset, stored in ((2, "2"), (-1, "2"), (1, "1")):  # -1 (ali-ons' "0") never rewinds; lower is kept
        r = await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="FreshG", topic="OffT", queueId=0,
                               commitOffset=offset)  # fmt: skip
        assert r.code == ResponseCode.SUCCESS
        assert await query(0) == (ResponseCode.SUCCESS, stored)
    bad_queue = await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="FreshG", topic="OffT",
                                   queueId=7, commitOffset=1)  # fmt: skip
    assert bad_queue.code == ResponseCode.INVALID_PARAMETER
    no_topic = await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="FreshG", topic="Nope",
                                  queueId=0, commitOffset=1)  # fmt: skip
    assert no_topic.code == ResponseCode.TOPIC_NOT_EXIST


def test_broker_ip_must_be_ipv4(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="brokerIP1"):
        BrokerApp(BrokerConfig(broker_ip1="broker.example"), StoreConfig(store_path_root_dir=str(tmp_path)))


async def test_unknown_request_code(cluster: Cluster) -> None:
    r = await cluster.call(999_999)
    assert r.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
