"""A group's per-topic request mode through AdminClient and ``orbitmq admin group mode set|show``, on a
cluster of two brokers (docs/pop-rebalance.md)."""

from __future__ import annotations

import json

import orjson
import pytest

from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from tests.integration.admin.conftest import TwoBrokers
from tests.integration.admin.test_admin_cli import run


async def test_set_and_show_reach_every_broker(two_brokers: TwoBrokers) -> None:
    admin = two_brokers.admin
    changes = await admin.set_request_mode("AdmG", "AdmT", "POP", pop_share_queue_num=1)
    assert sorted(c.broker_name for c in changes) == ["broker-a", "broker-b"]
    modes = await admin.request_modes("AdmG")
    assert {b.broker_name: b.modes for b in modes.brokers} == {
        "broker-a": {"AdmT": ("POP", 1)}, "broker-b": {"AdmT": ("POP", 1)}
    }  # fmt: skip
    assert modes.consistent("AdmT") and modes.brokers[0].default_mode == "PULL"
    # A broker that was set apart is shown as such.
    body = orjson.dumps({"topic": "AdmT", "consumerGroup": "AdmG", "mode": "PULL"})
    client = RemotingClient()
    try:
        r = await client.invoke(two_brokers.brokers["broker-b"].address,
                                RemotingCommand.request(RequestCode.SET_MESSAGE_REQUEST_MODE, {}, body), 5)  # fmt: skip
        assert r.code == ResponseCode.SUCCESS
    finally:
        await client.close()
    assert not (await admin.request_modes("AdmG")).consistent("AdmT")
    assert (await admin.request_modes("OtherG")).topics() == []


async def test_bad_modes_are_refused(two_brokers: TwoBrokers) -> None:
    with pytest.raises(ClientError, match="PUSH"):
        await two_brokers.admin.set_request_mode("AdmG", "AdmT", "PUSH")
    with pytest.raises(BrokerError) as info:
        await two_brokers.admin.set_request_mode("AdmG", "%RETRY%AdmG", "POP")
    assert info.value.code == ResponseCode.NO_PERMISSION


async def test_cli_group_mode_set_and_show(two_brokers: TwoBrokers) -> None:
    ns = two_brokers.namesrv.addr
    done = await run("--namesrv", ns, "group", "mode", "set", "CliG", "--topic", "CliT", "--mode", "POP",
                     "--share", "2", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {(b["brokerName"], b["mode"], b["popShareQueueNum"]) for b in json.loads(done.stdout)["brokers"]} == {
        ("broker-a", "POP", 2), ("broker-b", "POP", 2)
    }  # fmt: skip
    shown = await run("--namesrv", ns, "group", "mode", "show", "CliG")
    assert shown.returncode == 0, shown.stderr
    assert "CliT" in shown.stdout and "POP" in shown.stdout and "brokers differ" not in shown.stdout
    as_json = json.loads((await run("--namesrv", ns, "group", "mode", "show", "CliG", "--json")).stdout)
    assert as_json["brokers"][0]["modes"] == {"CliT": {"mode": "POP", "popShareQueueNum": 2}}
    usage = await run("--namesrv", ns, "group", "mode", "set", "CliG", "--topic", "CliT", "--mode", "PUSH")
    assert usage.returncode == 2
    refused = await run(
        "--namesrv", ns, "group", "mode", "set", "CliG", "--topic", "%RETRY%CliG", "--mode", "POP"
    )
    assert refused.returncode == 1 and "NO_PERMISSION" in refused.stderr
