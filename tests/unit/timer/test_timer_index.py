"""TimerIndex: slots, delivery order, pending counts and the low-water queue offset (property-tested)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orbitmq.broker.timer import Due, TimerIndex
from orbitmq.broker.timer.index import CHUNK


def test_slots_come_out_in_time_order_with_their_exact_times() -> None:
    idx = TimerIndex(1000)
    idx.add(5_500, 100, 0)
    idx.add(2_999, 200, 1)
    idx.add(5_001, 300, 2)
    assert len(idx) == 3 and idx.slot_count == 2
    assert idx.earliest_slot() == 2
    assert idx.take_slot(2) == [Due(2_999, 200)]
    assert idx.earliest_slot() == 5
    assert idx.take_slot(5) == [Due(5_001, 300), Due(5_500, 100)]
    assert idx.earliest_slot() is None
    assert len(idx) == 3  # taken is still pending until done
    for phy in (100, 200, 300):
        idx.done(phy)
    assert len(idx) == 0 and idx.low_queue_offset(7) == 7


def test_restore_puts_taken_messages_back_without_counting_them_twice() -> None:
    idx = TimerIndex(100)
    idx.add(250, 9, 0)
    taken = idx.take_slot(2)
    idx.restore(taken)
    assert len(idx) == 1 and idx.take_slot(2) == [Due(250, 9)]


def test_low_queue_offset_follows_the_oldest_chunk_with_pending_messages() -> None:
    idx = TimerIndex(1000)
    idx.add(10, 1000, CHUNK - 1)  # chunk 0
    idx.add(5, 2000, CHUNK)  # chunk 1
    idx.add(20, 500, 3)  # chunk 0 again, rebuilt after the feed: a smaller CommitLog offset
    assert idx.low_queue_offset(10**9) == 0
    idx.done(1000)
    idx.done(500)
    assert idx.low_queue_offset(10**9) == CHUNK
    idx.done(2000)
    assert idx.low_queue_offset(12345) == 12345


@given(st.lists(st.tuples(st.integers(0, 10**7), st.booleans()), max_size=300))
def test_low_offset_never_passes_a_pending_message(ops: list[tuple[int, bool]]) -> None:
    idx = TimerIndex(1000)
    pending: dict[int, tuple[int, int]] = {}  # phy -> (deliver_ms, queue offset)
    for q, (ms, deliver) in enumerate(ops):
        qo, phy = q * 997, 10_000 + q * 100
        idx.add(ms, phy, qo)
        pending[phy] = (ms, qo)
        if deliver:  # deliver the earliest slot completely
            slot = idx.earliest_slot()
            assert slot is not None
            for due in idx.take_slot(slot):
                assert pending.pop(due.phy)[0] == due.deliver_ms
                idx.done(due.phy)
        assert len(idx) == len(pending)
        assert idx.low_queue_offset(10**9) <= min((v[1] for v in pending.values()), default=10**9)
    out: list[Due] = []
    while (slot := idx.earliest_slot()) is not None:
        out.extend(idx.take_slot(slot))
    assert out == sorted(Due(ms, phy) for phy, (ms, _) in pending.items())
