"""AdminClient topic create/update/list/route/delete across both brokers of a cluster."""

from __future__ import annotations

import pytest

from orbitmq.admin import TopicSettings
from orbitmq.core.errors import BrokerError
from orbitmq.protocol.codes import ResponseCode
from tests.integration.admin.conftest import TwoBrokers


def queues_by_broker(route: dict[str, object]) -> dict[str, tuple[int, int, int]]:
    qds = route["queueDatas"]
    assert isinstance(qds, list)
    return {q["brokerName"]: (q["readQueueNums"], q["writeQueueNums"], q["perm"]) for q in qds}


async def test_create_puts_the_topic_on_every_broker_of_the_cluster(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    changes = await admin.create_topic("OrdersT", queues=3)
    assert sorted(c.broker_name for c in changes) == ["broker-a", "broker-b"]
    assert all(c.config and c.config["writeQueueNums"] == 3 for c in changes)
    route = await admin.topic_route("OrdersT")
    assert queues_by_broker(route) == {"broker-a": (3, 3, 6), "broker-b": (3, 3, 6)}
    assert "OrdersT" in await admin.topic_list()


async def test_update_changes_queue_counts_and_perm_and_keeps_the_type(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("UpT", queues=2, message_type="FIFO")
    changes = await admin.update_topic("UpT", TopicSettings(queues=5, perm=4))
    assert {c.action for c in changes} == {"updated"}
    assert queues_by_broker(await admin.topic_route("UpT")) == {"broker-a": (5, 5, 4), "broker-b": (5, 5, 4)}
    for b in two_brokers.brokers.values():
        cfg = await admin.topic_config(b.address, "UpT")
        assert cfg["attributes"] == {"message.type": "FIFO"}


async def test_update_of_a_missing_topic_is_topic_not_exist(two_brokers: TwoBrokers) -> None:
    with pytest.raises(BrokerError) as info:
        await two_brokers.admin.update_topic("NoSuchT", TopicSettings(queues=2))
    assert info.value.code == ResponseCode.TOPIC_NOT_EXIST


async def test_type_fifo_is_stored_as_the_topics_message_type(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("FifoT", queues=2, message_type="FIFO")
    for b in two_brokers.brokers.values():
        cfg = await admin.topic_config(b.address, "FifoT")
        assert cfg["attributes"] == {"message.type": "FIFO"}
        stored = b.topics.select_topic_config("FifoT")
        assert stored is not None and stored.attributes == {"message.type": "FIFO"}
    await admin.update_topic("FifoT", TopicSettings(message_type="DELAY"))
    cfg = await admin.topic_config(two_brokers.brokers["broker-b"].address, "FifoT")
    assert cfg["attributes"] == {"message.type": "DELAY"}


async def test_delete_removes_the_topic_from_brokers_and_the_namesrv(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("GoneT", queues=2)
    changes = await admin.delete_topic("GoneT")
    assert sorted(c.broker_name for c in changes) == ["broker-a", "broker-b"]
    with pytest.raises(BrokerError) as info:
        await admin.topic_route("GoneT")
    assert info.value.code == ResponseCode.TOPIC_NOT_EXIST
    assert "GoneT" not in await admin.topic_list()
    for b in two_brokers.brokers.values():
        with pytest.raises(BrokerError) as missing:
            await admin.topic_config(b.address, "GoneT")
        assert missing.value.code == ResponseCode.TOPIC_NOT_EXIST


async def test_unknown_cluster_is_an_error_and_changes_nothing(two_brokers: TwoBrokers) -> None:
    with pytest.raises(BrokerError, match="NoCluster"):
        await two_brokers.admin.create_topic("LostT", cluster="NoCluster")
    assert "LostT" not in await two_brokers.admin.topic_list()


async def test_bad_topic_name_surfaces_the_brokers_code_and_remark(two_brokers: TwoBrokers) -> None:
    with pytest.raises(BrokerError) as info:
        await two_brokers.admin.create_topic("bad name!")
    assert info.value.code == ResponseCode.INVALID_PARAMETER
    assert "illegal" in info.value.remark
