"""The MessageStore contract: the same tests against the memory store and the file store (both flush modes)."""

from __future__ import annotations

from orbitmq.protocol.record import decode_record, java_string_hash
from orbitmq.store import GetStatus, PutStatus

from .conftest import msg


async def put_n(store, n: int, topic: str = "T", queue_id: int = 0, **props: str) -> list:
    return [await store.put_message(msg(topic, queue_id, f"m{i}".encode(), **props)) for i in range(n)]


async def test_put_then_get_returns_records_in_order(store) -> None:
    results = await put_n(store, 10)
    assert [r.status for r in results] == [PutStatus.PUT_OK] * 10
    assert [r.queue_offset for r in results] == list(range(10))
    got = store.get_messages("T", 0, 0, 32)
    assert got.status is GetStatus.FOUND
    assert got.next_begin_offset == 10 and got.max_offset == 10 and got.min_offset == 0
    records = [decode_record(b) for b in got.buffers]
    assert [r.body for r in records] == [f"m{i}".encode() for i in range(10)]
    assert [r.queue_offset for r in records] == list(range(10)) == got.queue_offsets
    assert [r.physical_offset for r in records] == [r.physical_offset for r in results]
    assert all(r.store_host == ("127.0.0.1", 10911) for r in records)


async def test_offsets_outside_the_queue(store) -> None:
    assert store.get_messages("nope", 0, 0, 32).status is GetStatus.NO_MATCHED_LOGIC_QUEUE
    await put_n(store, 3)
    one = store.get_messages("T", 0, 3, 32)
    assert (one.status, one.next_begin_offset) == (GetStatus.OFFSET_OVERFLOW_ONE, 3)
    bad = store.get_messages("T", 0, 7, 32)
    assert (bad.status, bad.next_begin_offset) == (GetStatus.OFFSET_OVERFLOW_BADLY, 3)
    mid = store.get_messages("T", 0, 1, 32)
    assert mid.status is GetStatus.FOUND and mid.queue_offsets == [1, 2]


async def test_count_and_byte_limits(store) -> None:
    await put_n(store, 20)
    two = store.get_messages("T", 0, 0, 2)
    assert two.queue_offsets == [0, 1] and two.next_begin_offset == 2
    size = len(store.get_messages("T", 0, 0, 1).buffers[0])
    limited = store.get_messages("T", 0, 0, 32, max_bytes=size * 3)
    assert limited.message_count == 3 and limited.next_begin_offset == 3
    first_only = store.get_messages("T", 0, 0, 32, max_bytes=1)
    assert first_only.message_count == 1  # one record always goes out, even above the byte limit


async def test_tag_code_and_record_filters(store) -> None:
    for i in range(6):
        await store.put_message(msg("T", 0, f"m{i}".encode(), TAGS="a" if i % 2 else "b"))
    code_a = java_string_hash("a")
    only_a = store.get_messages("T", 0, 0, 32, tag_filter=lambda c: c == code_a)
    assert only_a.queue_offsets == [1, 3, 5] and only_a.next_begin_offset == 6
    by_props = store.get_messages("T", 0, 0, 32, record_filter=lambda p: p.get("TAGS") == "b")
    assert by_props.queue_offsets == [0, 2, 4]
    none = store.get_messages("T", 0, 0, 32, tag_filter=lambda c: False)
    assert none.status is GetStatus.NO_MATCHED_MESSAGE and none.next_begin_offset == 6


async def test_batch_gets_consecutive_queue_offsets(store) -> None:
    await put_n(store, 2)
    res = await store.put_messages([msg("T", 0, f"b{i}".encode()) for i in range(5)])
    assert res.ok and res.count == 5 and res.queue_offset == 2
    got = store.get_messages("T", 0, 2, 32)
    assert [decode_record(b).body for b in got.buffers] == [f"b{i}".encode() for i in range(5)]
    mixed = await store.put_messages([msg("T", 0), msg("T", 1)])
    assert mixed.status is PutStatus.MESSAGE_ILLEGAL


async def test_queues_are_independent(store) -> None:
    await put_n(store, 3, "A", 0)
    await put_n(store, 2, "A", 1)
    await put_n(store, 4, "B", 0)
    assert store.max_offset_in_queue("A", 0) == 3
    assert store.max_offset_in_queue("A", 1) == 2
    assert store.max_offset_in_queue("B", 0) == 4
    assert store.max_offset_in_queue("C", 0) == 0
    assert store.queues() == {"A": [0, 1], "B": [0]}
    await store.delete_topic("A")
    assert store.queues() == {"B": [0]}
    assert store.get_messages("A", 0, 0, 32).status is GetStatus.NO_MATCHED_LOGIC_QUEUE


async def test_offset_by_time_lands_on_first_of_equal_timestamps(store) -> None:
    clock = store.clock_for_test
    t0 = clock.now_ms()
    await put_n(store, 2)  # at t0
    await clock.advance(1.0)
    await put_n(store, 5)  # five at t0 + 1000
    await clock.advance(1.0)
    await put_n(store, 1)  # at t0 + 2000
    assert store.offset_by_time("T", 0, t0 - 5) == 0
    assert store.offset_by_time("T", 0, t0 + 1000) == 2
    assert store.offset_by_time("T", 0, t0 + 1500) == 7
    assert store.offset_by_time("T", 0, t0 + 9000) == 8
    assert store.message_store_timestamp("T", 0, 3) == t0 + 1000
    assert store.earliest_message_time("T", 0) == t0


async def test_look_up_by_offset_key_and_unique_id(store) -> None:
    res = await store.put_message(msg("T", 0, b"hello", KEYS="order-1 order-2", UNIQ_KEY="U1"))
    await store.put_message(msg("T", 0, b"other", KEYS="order-3"))
    await store.put_message(msg("Other", 0, b"elsewhere", KEYS="order-1"))
    rec = store.look_message_by_offset(res.physical_offset)
    assert rec is not None and rec.body == b"hello" and rec.offset_msg_id == res.msg_id
    assert [r.body for r in store.query_message("T", "order-2", 10)] == [b"hello"]
    assert [r.body for r in store.query_message("T", "U1", 10)] == [b"hello"]
    assert [r.body for r in store.query_message("T", "order-1", 10)] == [b"hello"]
    assert store.query_message("T", "missing", 10) == []


async def test_dispatch_listener_sees_every_record(store) -> None:
    seen = []
    store.add_dispatch_listener(lambda req: seen.append((req.topic, req.queue_id, req.queue_offset)))
    await put_n(store, 3, "T", 2)
    await store.put_messages([msg("T", 2), msg("T", 2)])
    await store.flush()
    assert seen == [("T", 2, i) for i in range(5)]


async def test_illegal_messages_are_refused(store) -> None:
    big = await store.put_message(msg("T", 0, b"x" * (store.config.max_message_size + 1)))
    assert big.status is PutStatus.MESSAGE_ILLEGAL
    props = await store.put_message(msg("T", 0, b"x", huge="v" * 40_000))
    assert props.status is PutStatus.PROPERTIES_SIZE_EXCEEDED
    assert store.max_offset_in_queue("T", 0) == 0


async def test_records_cross_segment_boundaries(store) -> None:
    body = b"z" * 3000
    results = [await store.put_message(msg("T", 0, body + str(i).encode())) for i in range(60)]
    assert all(r.ok for r in results)
    assert store.max_physical_offset > 64 * 1024 * 2 or store.__class__.__name__ == "MemoryMessageStore"
    offset, bodies = 0, []
    while True:
        got = store.get_messages("T", 0, offset, 7)
        if got.status is not GetStatus.FOUND:
            break
        bodies += [decode_record(b).body for b in got.buffers]
        offset = got.next_begin_offset
    assert bodies == [body + str(i).encode() for i in range(60)]
