"""SQL92 subscriptions end to end over TCP: pulls with the expression in the header or from the heartbeat,
long polling woken only by matching messages, CHECK_CLIENT_CONFIG, and the answers for invalid expressions
and for a broker with ``enablePropertyFilter`` off."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest

from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import MessageRecord

from .conftest import SYS_SUBSCRIPTION, SYS_SUSPEND, Cluster, until

EXPR = "a > 5 AND b = 'x'"


@pytest.fixture
async def sql_cluster(make_cluster: Callable[..., Awaitable[Cluster]]) -> Cluster:
    return await make_cluster(enable_property_filter=True)


async def fill(cluster: Cluster, topic: str, n: int = 12) -> None:
    """Message i has a=i, b='x' for even i else 'y', tag TagA for i < 6 else TagB; message 0 has no b."""
    for i in range(n):
        props = {"a": str(i)} | ({"b": "x" if i % 2 == 0 else "y"} if i else {})
        r = await cluster.send(topic, f"m{i}".encode(), tags="TagA" if i < 6 else "TagB", props=props)
        assert r.code == ResponseCode.SUCCESS


async def sql_pull(
    cluster: Cluster, topic: str, expr: str, offset: int = 0, sys_flag: int = SYS_SUBSCRIPTION
) -> tuple[RemotingCommand, list[MessageRecord]]:
    return await cluster.pull(topic, 0, offset, subscription=expr, expressionType="SQL92", sys_flag=sys_flag)


async def heartbeat(
    cluster: Cluster, group: str, topic: str, expr: str, expression_type: str = "SQL92"
) -> None:
    sub = {"topic": topic, "subString": expr, "expressionType": expression_type, "classFilterMode": False,
           "tagsSet": [], "codeSet": [], "subVersion": 5}  # fmt: skip
    body = {"clientID": f"c-{group}", "producerDataSet": [],
            "consumerDataSet": [{"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
                                 "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "subscriptionDataSet": [sub],
                                 "unitMode": False}]}  # fmt: skip
    assert (await cluster.call(RequestCode.HEART_BEAT, orjson.dumps(body))).code == ResponseCode.SUCCESS


async def test_pull_with_an_sql92_subscription_gets_only_matching_messages(sql_cluster: Cluster) -> None:
    await fill(sql_cluster, "Sql")
    response, records = await sql_pull(sql_cluster, "Sql", EXPR)
    assert response.code == ResponseCode.SUCCESS
    assert [m.body for m in records] == [b"m6", b"m8", b"m10"]
    assert response.ext_fields["nextBeginOffset"] == "12"
    # Null semantics over the wire: message 0 has no b.
    _, records = await sql_pull(sql_cluster, "Sql", "b IS NULL")
    assert [m.body for m in records] == [b"m0"]
    _, records = await sql_pull(sql_cluster, "Sql", "b <> 'x'")
    assert [m.body for m in records] == [f"m{i}".encode() for i in range(1, 12, 2)]
    # The message's own properties are visible too, TAGS included; tags alone no longer filter.
    _, records = await sql_pull(sql_cluster, "Sql", "TAGS = 'TagA' AND a BETWEEN 2 AND 3")
    assert [m.body for m in records] == [b"m2", b"m3"]


async def test_nothing_matching_moves_the_offset_on(sql_cluster: Cluster) -> None:
    await fill(sql_cluster, "SqlNone", 4)
    response, records = await sql_pull(sql_cluster, "SqlNone", "a > 100")
    assert response.code == ResponseCode.PULL_RETRY_IMMEDIATELY and records == []
    assert response.ext_fields["nextBeginOffset"] == "4"


async def test_tag_subscriptions_still_filter_by_tag(sql_cluster: Cluster) -> None:
    await fill(sql_cluster, "SqlTags", 8)
    _, records = await sql_cluster.pull("SqlTags", subscription="TagB")
    assert [m.body for m in records] == [b"m6", b"m7"]
    _, records = await sql_cluster.pull("SqlTags", subscription="TagA || TagB")
    assert len(records) == 8


async def test_the_heartbeat_subscription_serves_pulls_without_one(sql_cluster: Cluster) -> None:
    await fill(sql_cluster, "SqlHb")
    await heartbeat(sql_cluster, "HbSql", "SqlHb", EXPR)
    response, records = await sql_cluster.pull(
        "SqlHb", group="HbSql", sys_flag=0, subscription=None, subVersion=5
    )
    assert response.code == ResponseCode.SUCCESS and [m.body for m in records] == [b"m6", b"m8", b"m10"]
    # An expression that does not compile is registered (as upstream) but has no filter data.
    await heartbeat(sql_cluster, "HbBad", "SqlHb", "a >")
    response, _ = await sql_cluster.pull("SqlHb", group="HbBad", sys_flag=0, subscription=None, subVersion=5)
    assert response.code == ResponseCode.FILTER_DATA_NOT_EXIST
    assert response.remark and "ends too early" in response.remark


async def test_invalid_expressions_in_pulls_are_refused_with_a_reason(sql_cluster: Cluster) -> None:
    await fill(sql_cluster, "SqlBad", 1)
    for expr, reason in [
        ("a > 'x'", "cannot be compared"),
        ("a = = 1", "unexpected '='"),
        ("", "can't be null"),
    ]:
        response, _ = await sql_pull(sql_cluster, "SqlBad", expr)
        assert response.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED, expr
        assert response.remark and reason in response.remark, response.remark
        assert "nextBeginOffset" in response.ext_fields
    response, _ = await sql_cluster.pull("SqlBad", subscription="a > 1", expressionType="XPATH")
    assert response.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED and "XPATH" in (response.remark or "")


async def test_a_held_pull_is_woken_only_by_a_matching_message(sql_cluster: Cluster) -> None:
    await sql_cluster.send("SqlLp", b"creates the topic", props={"a": "0"})
    held = asyncio.create_task(
        sql_pull(sql_cluster, "SqlLp", "a > 5", 1, sys_flag=SYS_SUBSCRIPTION | SYS_SUSPEND)
    )
    await until(lambda: sql_cluster.b.long_polling.held_count == 1)
    assert (await sql_cluster.send("SqlLp", b"too small", props={"a": "3"})).code == 0
    assert (await sql_cluster.send("SqlLp", b"not a number", props={"a": "many"})).code == 0
    # Dispatch runs inside the put, before the send is answered: a wrong wake-up would have happened.
    assert sql_cluster.b.long_polling.held_count == 1 and not held.done()
    assert (await sql_cluster.send("SqlLp", b"wanted", props={"a": "9"})).code == 0
    response, records = await asyncio.wait_for(held, 5)
    assert response.code == ResponseCode.SUCCESS and [m.body for m in records] == [b"wanted"]


async def check_client_config(cluster: Cluster, expr: str, expression_type: str = "SQL92") -> RemotingCommand:
    body = {"clientId": "c1", "group": "G", "subscriptionData": {
        "topic": "T", "subString": expr, "expressionType": expression_type, "classFilterMode": False,
        "tagsSet": [], "codeSet": [], "subVersion": 1}}  # fmt: skip
    return await cluster.call(RequestCode.CHECK_CLIENT_CONFIG, orjson.dumps(body))


async def test_check_client_config_compiles_the_expression(sql_cluster: Cluster) -> None:
    assert (await check_client_config(sql_cluster, EXPR)).code == ResponseCode.SUCCESS
    bad = await check_client_config(sql_cluster, "a BETWEEN 5 AND 1")
    assert bad.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
    assert bad.remark and bad.remark.startswith("Invalid SQL92 expression") and "low bound" in bad.remark
    assert (await check_client_config(sql_cluster, "TagA || TagB", "TAG")).code == ResponseCode.SUCCESS


async def test_sql92_is_refused_when_the_property_filter_is_off(cluster: Cluster) -> None:
    await fill(cluster, "SqlOff", 2)
    response, _ = await sql_pull(cluster, "SqlOff", EXPR)
    assert response.code == ResponseCode.SYSTEM_ERROR
    assert response.remark == "The broker does not support consumer to filter message by SQL92"
    checked = await check_client_config(cluster, EXPR)
    assert checked.code == ResponseCode.SYSTEM_ERROR and checked.remark == response.remark
    # Upstream order: a heartbeat expression that does not compile has no filter data, whatever the switch.
    await heartbeat(cluster, "HbOff", "SqlOff", "a >")
    response, _ = await cluster.pull("SqlOff", group="HbOff", sys_flag=0, subscription=None, subVersion=5)
    assert response.code == ResponseCode.FILTER_DATA_NOT_EXIST
