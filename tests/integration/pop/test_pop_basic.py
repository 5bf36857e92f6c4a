"""POP_MESSAGE / ACK_MESSAGE / BATCH_ACK_MESSAGE / CHANGE_MESSAGE_INVISIBLETIME end to end over TCP, with
checkpoints and acks in the revive log, revive to the pop retry topic and the DLQ (pop-and-storage §1)."""

from __future__ import annotations

import orjson

from orbitmq.broker.subscription_groups import SubscriptionGroupConfig
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.pop import REVIVE_GROUP, ExtraInfo, revive_topic
from orbitmq.protocol.record import Prop, decode_records

from .conftest import Cluster, ack, batch_ack, change_invisible, pop, revive, send_many


def revive_records(c: Cluster) -> list[dict[str, object]]:
    """Every record of every revive queue: tag and JSON body."""
    store = c.b.store
    topic = revive_topic(c.b.config.broker_cluster_name)
    out: list[dict[str, object]] = []
    for qid in range(c.b.config.revive_queue_num):
        res = store.get_messages(topic, qid, 0, 10_000, max_bytes=1 << 30)
        for rec in decode_records(b"".join(bytes(v) for v in res.buffers)):
            out.append({"tag": rec.tags, "qid": qid, **orjson.loads(rec.body)})
    return out


async def test_pop_returns_messages_with_handles_and_acks_make_them_gone(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PT", 5)
    popped = await pop(c, "PT", queue_id=0, invisible_ms=10_000)
    assert popped.code == ResponseCode.SUCCESS and popped.response.remark == "FOUND"
    assert popped.bodies == [f"m{i}".encode() for i in range(5)]
    h = popped.header
    assert h.invisible_time == 10_000 and h.pop_time == c.b.clock.now_ms() and h.rest_num == 0
    assert h.start_offset_info == "0 0 0" and h.msg_offset_info == "0 0 0,1,2,3,4"
    extra = popped.messages[3].extra
    assert (extra.ck_offset, extra.queue_offset, extra.retry_kind, extra.broker_name) == (
        0,
        3,
        "0",
        "broker-a",
    )
    assert 0 <= extra.revive_qid < 8

    # One checkpoint in the revive log, covering the five offsets; the offset is committed past them.
    [ck] = [r for r in revive_records(c) if r["tag"] == "ck"]
    assert (ck["so"], ck["n"], ck["d"], ck["t"], ck["c"], ck["pt"], ck["it"]) == (
        0, 5, [0, 1, 2, 3, 4], "PT", "G", h.pop_time, 10_000,
    )  # fmt: skip
    assert c.b.offsets.query_offset("G", "PT", 0) == 5
    assert (await pop(c, "PT", queue_id=0)).code == ResponseCode.POLLING_TIMEOUT

    for m in popped.messages:
        assert await ack(c, "PT", m) == ResponseCode.SUCCESS
    assert await revive(c, 11) == 0
    assert (await pop(c, "PT", queue_id=0)).code == ResponseCode.POLLING_TIMEOUT
    # Revive progress passed the finished checkpoint.
    topic = revive_topic("DefaultCluster")
    progress = c.b.offsets.query_offset(REVIVE_GROUP, topic, extra.revive_qid)
    assert progress == c.b.store.max_offset_in_queue(topic, extra.revive_qid)


async def test_unacked_messages_come_back_from_the_retry_topic(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PR", 3)
    first = await pop(c, "PR", queue_id=0, invisible_ms=5_000)
    assert await ack(c, "PR", first.messages[1]) == ResponseCode.SUCCESS
    assert await revive(c, 4) == 0  # not yet invisible-time-out
    assert await revive(c, 2) == 2

    again = await pop(c, "PR", queue_id=0, invisible_ms=5_000)
    assert sorted(again.bodies) == [b"m0", b"m2"]
    for m in again.messages:
        rec = m.record
        # Rewritten to the original topic; the handle names the V1 retry topic's queue and offset.
        assert rec.topic == "PR" and rec.reconsume_times == 1
        assert rec.properties[Prop.FIRST_POP_TIME] == str(first.header.pop_time)
        assert m.extra.retry_kind == "1" and m.extra.queue_id == 0
        assert rec.properties[Prop.POP_CK] == m.handle
        assert rec.uniq_key == next(f.record.uniq_key for f in first.messages if f.body == m.body)
    assert c.b.store.max_offset_in_queue("%RETRY%G_PR", 0) == 2
    # Acking the retry copies (the ack goes to the retry topic the handle names) ends it.
    assert await batch_ack(c, "PR", again.messages) == ResponseCode.SUCCESS
    assert await revive(c, 6) == 0
    assert (await pop(c, "PR", queue_id=0)).code == ResponseCode.POLLING_TIMEOUT


async def test_dead_letter_after_retry_max_times(fake: Cluster) -> None:
    c = fake
    c.b.subscription_groups.update_subscription_group_config(SubscriptionGroupConfig("DG", retry_max_times=2))
    await send_many(c, "PD", 1)
    deliveries = 0
    for _ in range(5):
        popped = await pop(c, "PD", "DG", queue_id=0, invisible_ms=1_000)
        if popped.code != ResponseCode.SUCCESS:
            break
        deliveries += 1
        assert popped.messages[0].record.reconsume_times == deliveries - 1
        await revive(c, 2)
    assert deliveries == 3  # the first delivery and two retries
    dead = c.b.store.get_messages("%DLQ%DG", 0, 0, 10)
    [rec] = decode_records(b"".join(bytes(v) for v in dead.buffers))
    assert rec.body == b"m0" and rec.reconsume_times == 3
    assert rec.properties[Prop.DLQ_ORIGIN_TOPIC] == "PD"
    assert c.b.pop is not None and c.b.pop.stats.dead_lettered == 1


async def test_batch_ack_acks_only_the_listed_offsets(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PB", 6)
    popped = await pop(c, "PB", queue_id=0, invisible_ms=3_000)
    assert await batch_ack(c, "PB", [m for m in popped.messages if m.body != b"m4"]) == ResponseCode.SUCCESS
    [back] = [r for r in revive_records(c) if r["tag"] == "bAck"]
    assert back["aol"] == [0, 1, 2, 3, 5] and back["ao"] == -1
    assert await revive(c, 4) == 1
    assert (await pop(c, "PB", queue_id=0)).bodies == [b"m4"]


async def test_change_invisible_time_gives_a_new_handle(fake: Cluster) -> None:
    """Mid-batch change (upstream's ChangeInvisibleTimeIT): the changed message comes back at its new time;
    an ack with the *old* handle does not cancel the new checkpoint (#9583); the new handle does."""
    c = fake
    await send_many(c, "PC", 3)
    popped = await pop(c, "PC", queue_id=0, invisible_ms=5_000)
    m0, m1, m2 = popped.messages
    code, new = await change_invisible(c, "PC", m1, 20_000)
    assert code == ResponseCode.SUCCESS and new is not None
    new_extra = ExtraInfo.parse(new)
    assert new_extra.ck_offset == 1 and new_extra.queue_offset == 1 and new_extra.invisible_time == 20_000
    assert new_extra.pop_time > m1.extra.pop_time  # a distinct checkpoint even within one millisecond
    assert await ack(c, "PC", m0) == ResponseCode.SUCCESS
    assert await ack(c, "PC", m2) == ResponseCode.SUCCESS
    assert await revive(c, 6) == 0  # m1's old checkpoint was acked by the change

    assert await ack(c, "PC", m1) == ResponseCode.SUCCESS  # stale handle: harmless, changes nothing
    assert await revive(c, 15) == 1
    again = await pop(c, "PC", queue_id=0, invisible_ms=5_000)
    assert again.bodies == [b"m1"]
    assert await ack(c, "PC", again.messages[0]) == ResponseCode.SUCCESS
    assert await revive(c, 6) == 0


async def test_change_invisible_then_ack_with_the_new_handle(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PN", 1)
    [m] = (await pop(c, "PN", queue_id=0, invisible_ms=5_000)).messages
    _, new = await change_invisible(c, "PN", m, 10_000)
    assert new is not None and await ack(c, "PN", new) == ResponseCode.SUCCESS
    assert await revive(c, 30) == 0
    assert (await pop(c, "PN", queue_id=0)).code == ResponseCode.POLLING_TIMEOUT


async def test_late_and_duplicate_acks_are_harmless(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PL", 2)
    popped = await pop(c, "PL", queue_id=0, invisible_ms=1_000)
    assert await ack(c, "PL", popped.messages[0]) == ResponseCode.SUCCESS
    assert await ack(c, "PL", popped.messages[0]) == ResponseCode.SUCCESS  # duplicate
    assert await revive(c, 2) == 1
    assert await ack(c, "PL", popped.messages[1]) == ResponseCode.SUCCESS  # late: already revived
    assert await revive(c, 2) == 0
    again = await pop(c, "PL", queue_id=0)
    assert again.bodies == [b"m1"]  # at least once: the revived copy is still delivered, exactly once


async def test_tag_filter_and_filtered_offsets_advance(fake: Cluster) -> None:
    c = fake
    for i, tag in enumerate(["A", "B", "A", "B", "B"]):
        assert (await c.send("PF", f"m{i}".encode(), tags=tag)).code == 0
    popped = await pop(c, "PF", queue_id=0, exp="A")
    assert popped.bodies == [b"m0", b"m2"]
    assert popped.header.msg_offset_info == "0 0 0,2"
    assert [r["d"] for r in revive_records(c) if r["tag"] == "ck"] == [[0, 2]]
    assert c.b.offsets.query_offset("G", "PF", 0) == 5  # the filtered tail is passed in the same read
    for i, tag in enumerate(["B", "B"]):
        assert (await c.send("PF", f"n{i}".encode(), tags=tag)).code == 0
    assert (await pop(c, "PF", queue_id=0, exp="A")).code == ResponseCode.POLLING_TIMEOUT
    assert c.b.offsets.query_offset("G", "PF", 0) == 7  # nothing matched: an offset-only entry moved it


async def test_pop_of_every_queue_and_rest_num(fake: Cluster) -> None:
    c = fake
    for q in range(4):
        await send_many(c, "PQ", 3, queue_id=q, prefix=f"q{q}-")
    popped = await pop(c, "PQ", max_nums=5)
    assert len(popped.messages) == 5 and popped.header.rest_num == 7
    starts = popped.header.start_offset_info or ""
    assert len(starts.split(";")) == 2  # two queues visited, each with its own checkpoint
    rest: list[bytes] = []
    while (p := await pop(c, "PQ", max_nums=32)).code == ResponseCode.SUCCESS:
        rest += p.bodies
    assert len(rest) == 7 and not set(rest) & set(popped.bodies)


async def test_validation_codes(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PV", 1)
    assert (await pop(c, "PV", max_nums=33)).code == ResponseCode.INVALID_PARAMETER
    assert (await pop(c, "NoSuchTopic")).code == ResponseCode.TOPIC_NOT_EXIST
    assert (await pop(c, "PV", queue_id=4)).code == ResponseCode.INVALID_PARAMETER
    stale = await pop(c, "PV", born=c.b.clock.now_ms() - 10_000, poll_ms=1000)
    assert stale.code == ResponseCode.POLLING_TIMEOUT and "timeout too much" in (stale.response.remark or "")
    assert stale.response.ext_fields.keys() >= {"popTime", "invisibleTime", "reviveQid", "restNum"}

    [m] = (await pop(c, "PV", queue_id=0)).messages
    r = await c.call(
        RequestCode.ACK_MESSAGE, consumerGroup="G", topic="PV", queueId=0, extraInfo="x y", offset=0
    )
    assert r.code == ResponseCode.MESSAGE_ILLEGAL and "receipt handle" in (r.remark or "")
    assert await ack(c, "PV", m, offset=5) == ResponseCode.NO_MESSAGE
    forged = ExtraInfo.parse(m.handle)
    bad_rq = ExtraInfo(forged.ck_offset, forged.pop_time, forged.invisible_time, 77, "0", "broker-a", 0, 0)
    assert await ack(c, "PV", bad_rq.encode()) == ResponseCode.MESSAGE_ILLEGAL
    # changeInvisibleTime must reject offset == maxOffset (#9187), ack accepts it (inclusive max).
    at_max = ExtraInfo(0, forged.pop_time, 1000, forged.revive_qid, "0", "broker-a", 0, 1).encode()
    assert (await change_invisible(c, "PV", at_max, 1000))[0] == ResponseCode.NO_MESSAGE
    assert await ack(c, "PV", at_max) == ResponseCode.SUCCESS
    r = await c.call(RequestCode.BATCH_ACK_MESSAGE, orjson.dumps({"brokerName": "broker-a", "acks": []}))
    assert r.code == ResponseCode.NO_MESSAGE


async def test_peek_reads_without_consuming(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PK", 2)
    r = await c.call(RequestCode.PEEK_MESSAGE, consumerGroup="G", topic="PK", queueId=0, maxMsgNums=32)
    assert r.code == ResponseCode.SUCCESS
    assert [m.body for m in decode_records(r.body_bytes())] == [b"m0", b"m1"]
    assert (await pop(c, "PK", queue_id=0)).bodies == [b"m0", b"m1"]
    r = await c.call(RequestCode.PEEK_MESSAGE, consumerGroup="G", topic="PK", queueId=0, maxMsgNums=32)
    assert r.code == ResponseCode.PULL_NOT_FOUND


async def test_restart_keeps_what_is_in_flight(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """After a clean restart the revive log is read again from the revive progress: an unacked message
    still comes back once, an acked one never."""
    from orbitmq.core.clock import FakeClock

    clock = FakeClock()
    c: Cluster = await make_cluster(clock=clock)
    await send_many(c, "PS", 2)
    popped = await pop(c, "PS", queue_id=0, invisible_ms=5_000)
    assert await ack(c, "PS", popped.messages[0]) == ResponseCode.SUCCESS
    await c.restart_broker()
    assert (await pop(c, "PS", queue_id=0)).code == ResponseCode.POLLING_TIMEOUT
    assert await revive(c, 6) == 1
    assert (await pop(c, "PS", queue_id=0, invisible_ms=3_600_000)).bodies == [b"m1"]
    await c.restart_broker()
    assert await revive(c, 60) == 0  # not revived twice: the revive marker is in the log


async def test_server_side_offset_reset_moves_the_next_pop(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PZ", 6)
    first = await pop(c, "PZ", queue_id=0, max_nums=2, invisible_ms=60_000)
    assert first.bodies == [b"m0", b"m1"]
    c.b.offsets.assign_reset_offset("G", "PZ", 0, 4)
    assert (await pop(c, "PZ", queue_id=0)).bodies == [b"m4", b"m5"]
    assert c.b.offsets.query_offset("G", "PZ", 0) == 6


async def test_sql92_filter_through_the_filter_factory(make_cluster) -> None:  # type: ignore[no-untyped-def]
    c: Cluster = await make_cluster(enable_property_filter=True)
    for i in range(4):
        assert (await c.send("PSQL", f"m{i}".encode(), props={"a": str(i % 2)})).code == 0
    popped = await pop(c, "PSQL", queue_id=0, exp="a = 1", exp_type="SQL92")
    assert popped.bodies == [b"m1", b"m3"]
    bad = await pop(c, "PSQL", queue_id=0, exp="a = = 1", exp_type="SQL92")
    assert bad.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
