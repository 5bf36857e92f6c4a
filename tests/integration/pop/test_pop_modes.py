"""The same pop scenarios under every CK/ACK mode (synchronous, appendCkAsync/appendAckAsync, the merge
buffer, both): upstream's BatchAckIT with and without the buffer, change of invisible time mid-batch,
revive, late acks; and what only the buffer does (acked checkpoints never reach the log)."""

from __future__ import annotations

from orbitmq.protocol.codes import ResponseCode

from .conftest import Cluster, ack, batch_ack, change_invisible, pop, revive, send_many
from .test_pop_basic import revive_records


async def settle(c: Cluster) -> None:
    """Let asynchronous writes land (what a later revive round would wait for anyway)."""
    assert c.b.pop is not None
    await c.b.pop.writer.barrier()


async def test_batch_ack_then_revive_of_the_rest(moded: Cluster) -> None:
    c = moded
    await send_many(c, "MB", 6)
    popped = await pop(c, "MB", queue_id=0, invisible_ms=20_000)
    assert await batch_ack(c, "MB", [m for m in popped.messages if m.body not in (b"m2", b"m5")]) == 0
    await settle(c)
    assert await revive(c, 12) == 0  # the buffer (if on) has written the CK with its acks by now
    assert await revive(c, 9) == 2
    again = await pop(c, "MB", queue_id=0, invisible_ms=20_000)
    assert sorted(again.bodies) == [b"m2", b"m5"]
    assert await batch_ack(c, "MB", again.messages) == ResponseCode.SUCCESS
    assert await revive(c, 30) == 0
    assert c.b.offsets.query_offset("G", "MB", 0) == 6


async def test_change_invisible_mid_batch(moded: Cluster) -> None:
    c = moded
    await send_many(c, "MC", 3)
    m0, m1, m2 = (await pop(c, "MC", queue_id=0, invisible_ms=20_000)).messages
    code, new = await change_invisible(c, "MC", m1, 60_000)
    assert code == ResponseCode.SUCCESS and new is not None
    assert await ack(c, "MC", m0) == 0 and await ack(c, "MC", m2) == 0
    await settle(c)
    assert await revive(c, 25) == 0
    assert await revive(c, 40) == 1
    assert (await pop(c, "MC", queue_id=0)).bodies == [b"m1"]


async def test_unacked_and_late_acks(moded: Cluster) -> None:
    c = moded
    await send_many(c, "ML", 2)
    popped = await pop(c, "ML", queue_id=0, invisible_ms=6_000)
    assert await ack(c, "ML", popped.messages[0]) == 0
    await settle(c)
    assert await revive(c, 7) == 1
    assert await ack(c, "ML", popped.messages[1]) == 0  # late
    assert await revive(c, 7) == 0
    assert (await pop(c, "ML", queue_id=0)).bodies == [b"m1"]


async def test_offset_moves_once_the_checkpoint_is_safe(moded: Cluster) -> None:
    c = moded
    await send_many(c, "MO", 4)
    popped = await pop(c, "MO", queue_id=0, invisible_ms=20_000)
    await settle(c)
    merge = c.b.config.enable_pop_buffer_merge
    # With the buffer the checkpoint is only in memory: the offset waits for it to be acked or written.
    assert c.b.offsets.query_offset("G", "MO", 0) == (0 if merge else 4)
    assert await batch_ack(c, "MO", popped.messages) == 0
    await settle(c)
    assert c.b.offsets.query_offset("G", "MO", 0) == 4


async def test_merge_buffer_keeps_acked_checkpoints_out_of_the_log(make_cluster) -> None:  # type: ignore[no-untyped-def]
    from orbitmq.core.clock import FakeClock

    c: Cluster = await make_cluster(clock=FakeClock(), enable_pop_buffer_merge=True)
    await send_many(c, "MM", 5)
    popped = await pop(c, "MM", queue_id=0, invisible_ms=30_000)
    for m in popped.messages:
        assert await ack(c, "MM", m) == ResponseCode.SUCCESS
    assert revive_records(c) == []
    assert c.b.pop is not None and c.b.pop.stats.checkpoints_merged == 1 and c.b.pop.stats.acks_merged == 5
    assert c.b.offsets.query_offset("G", "MM", 0) == 5
    # A short invisible time is not worth buffering: written at once.
    await send_many(c, "MM", 1, prefix="s")
    await pop(c, "MM", queue_id=0, invisible_ms=2_000)
    assert [r["tag"] for r in revive_records(c)] == ["ck"]


async def test_merge_buffer_is_written_out_at_shutdown(make_cluster) -> None:  # type: ignore[no-untyped-def]
    from orbitmq.core.clock import FakeClock

    c: Cluster = await make_cluster(clock=FakeClock(), enable_pop_buffer_merge=True)
    await send_many(c, "MS", 2)
    popped = await pop(c, "MS", queue_id=0, invisible_ms=30_000)
    assert await ack(c, "MS", popped.messages[0]) == 0
    assert revive_records(c) == []
    await c.restart_broker()
    assert sorted(str(r["tag"]) for r in revive_records(c)) == ["ack", "ck"]
    assert c.b.offsets.query_offset("G", "MS", 0) == 2
    assert await revive(c, 31) == 1
    assert (await pop(c, "MS", queue_id=0)).bodies == [b"m1"]


async def test_3787_an_ack_just_before_the_revive_time_wins(moded: Cluster) -> None:
    """#3787/#4153: an ack given before the invisible time ends must never lose to the revive."""
    c = moded
    await send_many(c, "MJ", 1)
    [m] = (await pop(c, "MJ", queue_id=0, invisible_ms=20_000)).messages
    await revive(c, 19.999)
    assert await ack(c, "MJ", m) == ResponseCode.SUCCESS  # 1 ms before: may still be in flight (async)
    assert await revive(c, 0.001) == 0
    assert await revive(c, 60) == 0
