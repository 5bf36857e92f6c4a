"""AdminClient: finding messages (by offset id, client id, key, queue offset), sending a test message,
the cluster's brokers with runtime info, and broker config changes limited to the run-time keys."""

from __future__ import annotations

import pytest

from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.protocol.codes import ResponseCode
from tests.integration.admin.conftest import TwoBrokers


async def test_send_then_find_by_every_id_key_and_offset(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("MsgT", queues=2)
    sent = await admin.send_test_message("MsgT", "héllo".encode(), tags="TagA", keys=["order-42", "cust-7"])
    assert sent.status == "SEND_OK"

    by_offset_id = await admin.message_by_id(sent.offset_msg_id)
    assert [f.message.body for f in by_offset_id] == ["héllo".encode()]
    assert by_offset_id[0].message.keys == ["order-42", "cust-7"] and by_offset_id[0].message.tags == "TagA"

    by_client_id = await admin.message_by_id(sent.msg_id, "MsgT")
    assert [f.message.offset_msg_id for f in by_client_id] == [sent.offset_msg_id]
    with pytest.raises(ClientError):
        await admin.message_by_id(sent.msg_id)  # a client id needs the topic

    by_key = await admin.messages_by_key("MsgT", "cust-7")
    assert [f.message.msg_id for f in by_key] == [sent.msg_id]
    assert await admin.messages_by_key("MsgT", "nobody") == []

    at = await admin.message_at("MsgT", sent.broker_name, sent.queue_id, sent.queue_offset)
    assert at.message.msg_id == sent.msg_id and at.to_json()["body"] == "héllo"
    with pytest.raises(BrokerError) as err:
        await admin.message_at("MsgT", sent.broker_name, sent.queue_id, sent.queue_offset + 1)
    assert err.value.code == ResponseCode.QUERY_NOT_FOUND


async def test_cluster_lists_brokers_with_version_tps_and_disk(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    brokers = await admin.brokers()
    assert [(b.cluster, b.broker_name, b.broker_id) for b in brokers] == [
        ("DefaultCluster", "broker-a", 0), ("DefaultCluster", "broker-b", 0)
    ]  # fmt: skip
    for b in brokers:
        assert b.error is None and b.version.startswith("V5_")
        assert b.put_tps is not None and b.get_tps is not None
        assert b.disk_ratio is not None and 0.0 < b.disk_ratio <= 1.0


async def test_broker_config_changes_only_run_time_keys(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    addr = two_brokers.brokers["broker-a"].address
    before = await admin.broker_config(addr)
    assert before["brokerName"] == "broker-a" and before["autoCreateTopicEnable"] == "true"
    after = await admin.update_broker_config(addr, {"autoCreateTopicEnable": "false", "traceOn": "false"})
    assert after["autoCreateTopicEnable"] == "false" and after["traceOn"] == "false"
    assert not two_brokers.brokers["broker-a"].config.auto_create_topic_enable

    for key, value in (
        ("storePathRootDir", "/tmp/evil"),
        ("rocketmqHome", "/tmp"),
        ("namesrvAddr", "6.6.6.6:9876"),
    ):
        with pytest.raises(BrokerError) as err:
            await admin.update_broker_config(addr, {"traceOn": "true", key: value})
        assert err.value.code == ResponseCode.NO_PERMISSION and key in err.value.remark
    with pytest.raises(BrokerError) as err:
        await admin.update_broker_config(addr, {"brokerName": "other"})
    assert err.value.code == ResponseCode.NO_PERMISSION and "restart" in err.value.remark
    with pytest.raises(BrokerError) as err:
        await admin.update_broker_config(addr, {"longPollingEnable": "maybe"})
    assert err.value.code == ResponseCode.INVALID_PARAMETER
    assert (await admin.broker_config(addr))["traceOn"] == "false"  # the refused requests changed nothing


async def test_a_read_only_broker_refuses_sends(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    await admin.create_topic("PermT", queues=1)
    for b in two_brokers.brokers.values():
        await admin.update_broker_config(b.address, {"brokerPermission": "4"})
    with pytest.raises(BrokerError) as err:
        await admin.send_test_message("PermT", b"x")
    assert err.value.code == ResponseCode.NO_PERMISSION
