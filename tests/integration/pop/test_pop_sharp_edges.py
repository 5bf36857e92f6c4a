"""One regression test per upstream POP sharp edge (pop-and-storage §5) and suspected defect (§6) that applies
to our design; the map from item to test is in docs/pop.md ("Upstream sharp edges")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from orbitmq.core.clock import FakeClock
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.pop import INIT_MODE_MAX
from orbitmq.protocol.record import Prop

from .conftest import Cluster, ack, pop, revive, send_many
from .test_pop_basic import revive_records


async def test_3498_checkpoints_spread_round_robin_over_revive_queues(fake: Cluster) -> None:
    c = fake
    await send_many(c, "E1", 8)
    for _ in range(8):
        assert (await pop(c, "E1", queue_id=0, max_nums=1)).code == ResponseCode.SUCCESS
    assert sorted(r["qid"] for r in revive_records(c) if r["tag"] == "ck") == list(range(8))


async def test_3503_a_restart_does_not_rewind_the_pop_offset(
    make_cluster: Callable[..., Awaitable[Cluster]],
) -> None:
    c = await make_cluster(clock=FakeClock())
    await send_many(c, "E2", 4)
    for m in (await pop(c, "E2", queue_id=0, max_nums=3)).messages:
        assert await ack(c, "E2", m) == ResponseCode.SUCCESS
    await c.restart_broker()
    assert (await pop(c, "E2", queue_id=0)).bodies == [b"m3"]


async def test_6339_revived_message_keeps_its_flag_and_properties(fake: Cluster) -> None:
    c = fake
    assert (await c.send("E3", b"flagged", tags="T1", keys="K1", flag=7, props={"p": "v"})).code == 0
    first = await pop(c, "E3", queue_id=0, invisible_ms=1000)
    await revive(c, 2)
    [m] = (await pop(c, "E3", queue_id=0)).messages
    rec = m.record
    assert rec.flag == 7 and rec.tags == "T1" and rec.keys == ["K1"] and rec.properties["p"] == "v"
    assert rec.uniq_key == first.messages[0].record.uniq_key and rec.born_timestamp == 1_700_000_000_000


async def test_7029_retry_messages_can_keep_their_actual_topic(
    make_cluster: Callable[..., Awaitable[Cluster]],
) -> None:
    c = await make_cluster(clock=FakeClock(), pop_response_return_actual_retry_topic=True)
    await send_many(c, "E4", 1)
    await pop(c, "E4", queue_id=0, invisible_ms=1000)
    await revive(c, 2)
    [m] = (await pop(c, "E4", queue_id=0)).messages
    assert m.record.topic == "%RETRY%G_E4" and Prop.POP_CK not in m.record.properties
    assert m.extra.retry_kind == "1"  # the client derives the kind from the topic
    assert await ack(c, "E4", m) == ResponseCode.SUCCESS
    assert await revive(c, 120) == 0


async def test_7724_8479_checkpoint_of_a_recreated_queue_revives_nothing_wrong(fake: Cluster) -> None:
    """The topic is deleted and recreated with fewer messages: checkpoint offsets past the new end are
    skipped, never retried forever, and the revive progress moves on. (Offset 0 now holds the new message:
    it may be revived once, a duplicate of a message that is delivered anyway, never a loss.)"""
    c = fake
    await send_many(c, "E5", 3)
    await pop(c, "E5", queue_id=0, invisible_ms=1000)
    c.b.topics.delete_topic_config("E5")
    await c.b.store.delete_topic("E5")
    await send_many(c, "E5", 1, prefix="new")
    assert await revive(c, 2) <= 1
    assert await revive(c, 2) == 0
    assert c.b.pop is not None and all(len(s) == 0 for s in c.b.pop.revive.states.values())


async def test_8268_fifo_pop_past_filtered_messages_commits_directly(fake: Cluster) -> None:
    c = fake
    for tag in ("B", "B", "B"):
        assert (await c.send("E6", b"b", tags=tag)).code == 0
    got = await pop(c, "E6", queue_id=0, order=True, attempt_id="a", exp="A")
    assert got.code == ResponseCode.POLLING_TIMEOUT
    assert c.b.offsets.query_offset("G", "E6", 0) == 3  # no checkpoint, no mock: committed at once
    assert (await c.send("E6", b"a", tags="A")).code == 0
    assert (await pop(c, "E6", queue_id=0, order=True, attempt_id="b", exp="A")).bodies == [b"a"]


async def test_8402_init_offset_is_committed_in_every_mode(fake: Cluster) -> None:
    c = fake
    await send_many(c, "E7", 3)
    # MAX on a queue whose first message is still in memory starts at 0 (initPopOffsetByCheckMsgInMem).
    got = await pop(c, "E7", queue_id=0, init_mode=INIT_MODE_MAX)
    assert got.bodies == [b"m0", b"m1", b"m2"]
    empty = await pop(
        c, "E7", "OtherG", queue_id=1, init_mode=INIT_MODE_MAX
    )  # nothing there: still initialised
    assert empty.code == ResponseCode.POLLING_TIMEOUT and c.b.offsets.query_offset("OtherG", "E7", 1) == 0


async def test_8472_held_pop_looks_past_a_long_filtered_backlog_at_once(cluster: Cluster) -> None:
    """More filtered-out messages than one read's filter window (800): without a wake-up right after
    parking, the matching message behind them would wait for the whole poll time."""
    c = cluster
    assert c.b.store.config.max_filter_message_count == 800
    for i in range(900):
        assert (await c.send("E8", f"b{i}".encode(), tags="B")).code == 0
    assert (await c.send("E8", b"wanted", tags="A")).code == 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    got = await pop(c, "E8", queue_id=0, exp="A", poll_ms=4000)
    assert got.bodies == [b"wanted"] and loop.time() - start < 3


async def test_8592_9339_a_blocked_fifo_queue_adds_no_backlog(fake: Cluster) -> None:
    c = fake
    await send_many(c, "E9", 5)
    await pop(c, "E9", queue_id=0, order=True, attempt_id="a", max_nums=2)
    blocked = await pop(c, "E9", queue_id=0, order=True, attempt_id="b")
    assert blocked.code == ResponseCode.POLLING_TIMEOUT and blocked.header.rest_num == 0


async def test_10229_server_side_reset_applies_to_fifo_pop(fake: Cluster) -> None:
    c = fake
    await send_many(c, "EA", 5)
    await pop(c, "EA", queue_id=0, order=True, attempt_id="a", max_nums=2)
    c.b.offsets.assign_reset_offset("G", "EA", 0, 3)
    got = await pop(c, "EA", queue_id=0, order=True, attempt_id="b")  # the reset also lifts the block
    assert got.bodies == [b"m3", b"m4"]


async def test_8835_acks_written_from_the_merge_buffer_carry_the_broker_name(
    make_cluster: Callable[..., Awaitable[Cluster]],
) -> None:
    c = await make_cluster(clock=FakeClock(), enable_pop_buffer_merge=True)
    await send_many(c, "EB", 3)
    popped = await pop(c, "EB", queue_id=0, invisible_ms=30_000)
    assert await ack(c, "EB", popped.messages[0]) == ResponseCode.SUCCESS
    assert await ack(c, "EB", popped.messages[2]) == ResponseCode.SUCCESS
    await revive(c, 11)  # popCkStayBufferTime passed: checkpoint and gathered acks are written
    acks = [r for r in revive_records(c) if r["tag"] in ("ack", "bAck")]
    assert [(r["bn"], r.get("aol")) for r in acks] == [("broker-a", [0, 2])]
    assert await revive(c, 20) == 1
