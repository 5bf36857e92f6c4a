"""PULL_MESSAGE / LITE_PULL_MESSAGE: every case of remoting-protocol §6.2 and the commit flag (§6.3)."""

from __future__ import annotations

import orjson

from orbitmq.protocol.codes import RequestCode, ResponseCode

from .conftest import SYS_COMMIT, SYS_SUBSCRIPTION, Cluster

REQUIRED = {"suggestWhichBrokerId", "nextBeginOffset", "minOffset", "maxOffset"}


async def fill(cluster: Cluster, topic: str, n: int, queue_id: int = 0, tags: str = "TagA") -> None:
    for i in range(n):
        assert (await cluster.send(topic, f"m{i}".encode(), tags=tags, queue_id=queue_id)).code == 0


async def test_status_cases_and_next_offsets(cluster: Cluster) -> None:
    await fill(cluster, "Cases", 3)
    cases = [
        # (queue, offset, subscription, expected code, expected nextBeginOffset, remark)
        (0, 0, "*", ResponseCode.SUCCESS, 3, "FOUND"),
        (0, 1, "TagB", ResponseCode.PULL_RETRY_IMMEDIATELY, 3, "NO_MATCHED_MESSAGE"),
        (1, 0, "*", ResponseCode.PULL_NOT_FOUND, 0, "NO_MATCHED_LOGIC_QUEUE"),  # empty queue, offset 0
        (1, 5, "*", ResponseCode.PULL_OFFSET_MOVED, 0, "NO_MATCHED_LOGIC_QUEUE"),  # empty queue, offset ≠ 0
        (0, 3, "*", ResponseCode.PULL_NOT_FOUND, 3, "OFFSET_OVERFLOW_ONE"),  # caught up
        (0, 9, "*", ResponseCode.PULL_OFFSET_MOVED, 3, "OFFSET_OVERFLOW_BADLY"),  # beyond max → max
        (0, -1, "*", ResponseCode.PULL_OFFSET_MOVED, 0, "OFFSET_TOO_SMALL"),  # below min → min
    ]
    for qid, offset, sub, code, next_offset, remark in cases:
        r, _ = await cluster.pull("Cases", qid, offset, subscription=sub)
        assert (r.code, int(r.ext_fields["nextBeginOffset"]), r.remark) == (code, next_offset, remark), (
            qid,
            offset,
        )
        assert r.ext_fields.keys() >= REQUIRED
        assert r.ext_fields["suggestWhichBrokerId"] == "0"
        assert (r.body_bytes() != b"") == (code == ResponseCode.SUCCESS)


async def test_max_messages_and_lite_pull(cluster: Cluster) -> None:
    await fill(cluster, "Many", 5)
    r, records = await cluster.pull("Many", 0, 1, max_nums=2)
    assert [m.queue_offset for m in records] == [1, 2] and r.ext_fields["nextBeginOffset"] == "3"
    lite, records = await cluster.pull("Many", 0, 3, code=RequestCode.LITE_PULL_MESSAGE, sys_flag=0x10 | 0x4)
    assert lite.code == ResponseCode.SUCCESS and [m.queue_offset for m in records] == [3, 4]


async def test_errors_carry_the_position_fields(cluster: Cluster) -> None:
    await fill(cluster, "Err", 2)
    await cluster.heartbeat("c1", "HbGroup", {"Err": "*"}, sub_version=10)
    checks = [
        (dict(topic="NoSuchTopic"), ResponseCode.TOPIC_NOT_EXIST),
        (dict(topic="Err", queue_id=4), ResponseCode.INVALID_PARAMETER),
        (dict(topic="Err", sys_flag=0, group="NoHeartbeat"), ResponseCode.SUBSCRIPTION_NOT_EXIST),
        (dict(topic="Cases", sys_flag=0, group="HbGroup"), ResponseCode.TOPIC_NOT_EXIST),
        (dict(topic="%RETRY%HbGroup", sys_flag=0, group="HbGroup"), ResponseCode.SUBSCRIPTION_NOT_EXIST),
        (dict(topic="Err", sys_flag=0, group="HbGroup", subVersion=11), ResponseCode.SUBSCRIPTION_NOT_LATEST),
        (dict(topic="Err", subscription="||"), ResponseCode.SUBSCRIPTION_PARSE_FAILED),
        (dict(topic="Err", subscription="a > 1", expressionType="SQL92"), ResponseCode.SYSTEM_ERROR),
    ]
    for kwargs, code in checks:
        r, _ = await cluster.pull(**kwargs)  # type: ignore[arg-type]
        assert r.code == code, (kwargs, r.code, r.remark)
        assert r.remark and r.ext_fields.keys() >= REQUIRED, kwargs
    # The heartbeat's subscription serves pulls without one in the header (Java clients).
    ok, records = await cluster.pull("Err", sys_flag=0, group="HbGroup", subVersion=10)
    assert ok.code == ResponseCode.SUCCESS and len(records) == 2


async def test_malformed_pull_header_is_answered_with_the_position_fields(cluster: Cluster) -> None:
    r = await cluster.call(RequestCode.PULL_MESSAGE, consumerGroup="G", topic="T", queueId="zero")
    assert r.code == ResponseCode.SYSTEM_ERROR and "queueId" in (r.remark or "")
    assert r.ext_fields.keys() >= REQUIRED
    assert (await cluster.call(RequestCode.GET_MAX_OFFSET, topic="T", queueId=0)).code == 0  # connection fine


async def test_disabled_group_may_not_pull(cluster: Cluster) -> None:
    await fill(cluster, "Locked", 1)
    cfg = {"groupName": "Disabled", "consumeEnable": False}
    assert (await cluster.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, orjson.dumps(cfg))).code == 0
    r, _ = await cluster.pull("Locked", group="Disabled")
    assert r.code == ResponseCode.NO_PERMISSION


async def test_commit_flag_stores_the_offset_once_and_ignores_negative(cluster: Cluster) -> None:
    await fill(cluster, "Commit", 4)

    async def committed() -> str | None:
        r = await cluster.call(
            RequestCode.QUERY_CONSUMER_OFFSET, consumerGroup="CG", topic="Commit", queueId=0
        )
        return r.ext_fields.get("offset")

    r, _ = await cluster.pull(
        "Commit", 0, 2, group="CG", sys_flag=SYS_SUBSCRIPTION | SYS_COMMIT, commit_offset=2
    )
    assert r.code == ResponseCode.SUCCESS
    assert await committed() == "2"
    # ali-ons sends commitOffset -1 for an in-memory 0: it must not rewind the stored offset.
    await cluster.pull("Commit", 0, 4, group="CG", sys_flag=SYS_SUBSCRIPTION | SYS_COMMIT, commit_offset=-1,
                       suspend_ms=0)  # fmt: skip
    assert await committed() == "2"
    # Without the flag nothing is stored.
    await cluster.pull("Commit", 0, 3, group="CG", sys_flag=SYS_SUBSCRIPTION, commit_offset=3)
    assert await committed() == "2"
