"""INVOKE_BROKER_TO_RESET_OFFSET over the wire: persisted for never-seen pairs, picked up by the next pull,
stale commits ignored, held pulls woken, timestamps shared by many messages, the legacy push (code 220)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from orbitmq.core.clock import FakeClock
from orbitmq.net import Connection, RemotingClient
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from tests.integration.broker.conftest import SYS_COMMIT, SYS_SUBSCRIPTION, SYS_SUSPEND, until
from tests.integration.offsets.conftest import Cluster

MakeCluster = Callable[..., Awaitable[Cluster]]


async def create_topic(c: Cluster, topic: str, queues: int = 2) -> None:
    r = await c.call(RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102",
                     readQueueNums=queues, writeQueueNums=queues, perm=6, topicFilterType="SINGLE_TAG",
                     order=False)  # fmt: skip
    assert r.code == 0, r.remark


async def reset(c: Cluster, group: str, topic: str, *, queue: int = -1, offset: int | None = None,
                timestamp: int = -1) -> RemotingCommand:  # fmt: skip
    return await c.call(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, group=group, topic=topic, queueId=queue,
                        offset=offset, timestamp=timestamp, isForce=True)  # fmt: skip


def reset_table(r: RemotingCommand) -> dict[int, int]:
    """ResetOffsetBody with MessageQueue object keys → {queueId: offset}."""
    table = fastjson.loads(r.body_bytes())["offsetTable"]
    return {int(k["queueId"]): v for k, v in table.items()}


async def query(c: Cluster, group: str, topic: str, queue: int) -> int | None:
    r = await c.call(RequestCode.QUERY_CONSUMER_OFFSET, consumerGroup=group, topic=topic, queueId=queue,
                     setZeroIfNotFound=False)  # fmt: skip
    return int(r.ext_fields["offset"]) if r.code == 0 else None


async def test_reset_of_a_never_seen_group_is_persisted_and_survives_a_restart(cluster: Cluster) -> None:
    await create_topic(cluster, "RsT")
    for i in range(10):
        await cluster.send("RsT", f"m{i}".encode(), queue_id=i % 2)
    r = await reset(cluster, "NeverSeenG", "RsT", offset=3)
    assert r.code == 0, r.remark
    assert reset_table(r) == {0: 3, 1: 3}
    await cluster.restart_broker()
    assert [await query(cluster, "NeverSeenG", "RsT", q) for q in (0, 1)] == [3, 3]
    saved = orjson.loads(
        (Path(cluster.store_config.store_path_root_dir) / "config/consumerOffset.json").read_bytes()
    )
    assert saved["offsetTable"]["RsT@NeverSeenG"] == {"0": 3, "1": 3}
    # The first consumer's first pull at the reset point reads normally (nothing to correct).
    pulled, records = await cluster.pull("RsT", 0, 3, group="NeverSeenG", sys_flag=SYS_SUBSCRIPTION)
    assert pulled.code == 0 and [rec.queue_offset for rec in records] == [3, 4]


async def test_next_pull_is_moved_to_the_reset_and_stale_commits_are_ignored(cluster: Cluster) -> None:
    await create_topic(cluster, "MoveT", 1)
    for i in range(8):
        await cluster.send("MoveT", f"m{i}".encode())
    await cluster.heartbeat("ip@c1", "MoveG", {"MoveT": "*"})
    assert (await cluster.pull("MoveT", 0, 6, group="MoveG", sys_flag=SYS_SUBSCRIPTION | SYS_COMMIT,
                               commit_offset=6))[0].code == 0  # fmt: skip
    assert (await reset(cluster, "MoveG", "MoveT", offset=2)).code == 0
    stale = await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="MoveG", topic="MoveT",
                               queueId=0, commitOffset=8)  # fmt: skip
    assert stale.code == 0 and "reset" in (stale.remark or "")
    assert await query(cluster, "MoveG", "MoveT", 0) == 2
    moved, _ = await cluster.pull("MoveT", 0, 8, group="MoveG", sys_flag=SYS_SUBSCRIPTION | SYS_COMMIT,
                                  commit_offset=8)  # fmt: skip
    assert moved.code == ResponseCode.PULL_OFFSET_MOVED and moved.remark == "OFFSET_RESET"
    assert moved.ext_fields["nextBeginOffset"] == "2" and moved.ext_fields["maxOffset"] == "8"
    assert await query(cluster, "MoveG", "MoveT", 0) == 2  # the piggy-backed commit predates the reset
    again, records = await cluster.pull("MoveT", 0, 2, group="MoveG", sys_flag=SYS_SUBSCRIPTION)
    assert again.code == 0 and records[0].queue_offset == 2
    ok = await cluster.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="MoveG", topic="MoveT",
                            queueId=0, commitOffset=5)  # fmt: skip
    assert ok.code == 0 and not ok.remark and await query(cluster, "MoveG", "MoveT", 0) == 5


async def test_a_held_pull_is_answered_with_the_reset_at_once(cluster: Cluster) -> None:
    await create_topic(cluster, "HeldT", 1)
    for i in range(4):
        await cluster.send("HeldT", f"m{i}".encode())
    await cluster.heartbeat("ip@c1", "HeldG", {"HeldT": "*"})
    puller = RemotingClient()
    try:
        held = asyncio.create_task(cluster.pull("HeldT", 0, 4, group="HeldG", suspend_ms=20_000,
                                                sys_flag=SYS_SUBSCRIPTION | SYS_SUSPEND, client=puller))  # fmt: skip
        await until(lambda: cluster.b.long_polling.held_count == 1)
        assert (await reset(cluster, "HeldG", "HeldT", timestamp=0)).code == 0
        answer, _ = await asyncio.wait_for(held, 5)  # not the 20 s hold
        assert answer.code == ResponseCode.PULL_OFFSET_MOVED and answer.ext_fields["nextBeginOffset"] == "0"
    finally:
        await puller.close()


async def test_reset_by_timestamp_lands_on_the_first_of_many_sharing_a_time(
    make_cluster: MakeCluster,
) -> None:
    clock = FakeClock(start_ms=1_700_000_000_000)
    c = await make_cluster(clock=clock)
    await create_topic(c, "TimeT", 1)
    born = {"bornTimestamp": 0}
    for i in range(3):
        await c.send("TimeT", f"early{i}".encode(), **born)
    await clock.advance(5)
    shared_ms = clock.now_ms()
    for i in range(40):  # stored (and born) within one millisecond
        await c.send("TimeT", f"same{i}".encode(), bornTimestamp=shared_ms)
    await clock.advance(5)
    await c.send("TimeT", b"late")
    r = await reset(c, "TimeG", "TimeT", timestamp=shared_ms)
    assert reset_table(r) == {0: 3}
    assert reset_table(await reset(c, "TimeG", "TimeT", timestamp=shared_ms + 1)) == {0: 43}
    assert reset_table(await reset(c, "TimeG", "TimeT", timestamp=0)) == {0: 0}
    assert reset_table(await reset(c, "TimeG", "TimeT", timestamp=clock.now_ms() + 1)) == {0: 44}


async def test_bad_resets_are_refused_and_change_nothing(make_cluster: MakeCluster) -> None:
    c = await make_cluster(auto_create_subscription_group=False)
    await create_topic(c, "BadT", 2)
    await c.send("BadT", b"x", queue_id=0)
    missing_topic = await reset(c, "G", "NoSuchT")
    assert missing_topic.code == ResponseCode.TOPIC_NOT_EXIST
    missing_group = await reset(c, "NoSuchG", "BadT")
    assert missing_group.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
    group = {"groupName": "BadG"}
    assert (await c.call(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, orjson.dumps(group))).code == 0
    too_far = await reset(c, "BadG", "BadT", queue=0, offset=2)
    assert too_far.code == ResponseCode.INVALID_PARAMETER and "[0-1]" in (too_far.remark or "")
    all_queues = await reset(c, "BadG", "BadT", offset=1)  # queue 1 is empty: 1 is out of its range
    assert all_queues.code == ResponseCode.INVALID_PARAMETER
    bad_queue = await reset(c, "BadG", "BadT", queue=2, offset=0)
    assert bad_queue.code == ResponseCode.INVALID_PARAMETER
    assert c.b.offsets.query_offsets("BadG", "BadT") == {}


async def test_legacy_reset_pushes_code_220_to_online_consumers(make_cluster: MakeCluster) -> None:
    c = await make_cluster(use_server_side_reset_offset=False)
    await create_topic(c, "LegT", 2)
    for i in range(6):
        await c.send("LegT", f"m{i}".encode(), queue_id=i % 2)
    pushed: asyncio.Queue[RemotingCommand] = asyncio.Queue()

    async def on_reset(cmd: RemotingCommand, conn: Connection) -> None:
        pushed.put_nowait(cmd)

    member = RemotingClient()
    member.dispatch.register(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, on_reset)
    try:
        await c.heartbeat("ip@legacy", "LegG", {"LegT": "*"}, client=member)
        for q in (0, 1):
            await c.call(RequestCode.UPDATE_CONSUMER_OFFSET, consumerGroup="LegG", topic="LegT", queueId=q,
                         commitOffset=2)  # fmt: skip
        r = await reset(c, "LegG", "LegT", timestamp=0)
        assert r.code == 0 and reset_table(r) == {0: 0, 1: 0}
        cmd = await asyncio.wait_for(pushed.get(), 5)
        assert cmd.ext_fields["group"] == "LegG" and cmd.ext_fields["topic"] == "LegT"
        assert cmd.ext_fields["timestamp"] == "0" and cmd.ext_fields["isForce"] == "true"
        assert reset_table(cmd) == {0: 0, 1: 0}
        assert c.b.offsets.query_offsets("LegG", "LegT") == {0: 0, 1: 0}  # stored too
        assert c.b.offsets.pending_resets() == {}  # no pending reset in this mode
    finally:
        await member.close()
