"""The FIFO lock table (orbitmq.broker.pop.orderly): blocking, counts, acks, persistence."""

from __future__ import annotations

from pathlib import Path

from orbitmq.broker.pop.orderly import ACK_ILLEGAL, ACK_STALE, OrderInfoManager
from orbitmq.core.clock import FakeClock

KEY = ("T", "G", 0)


def test_block_until_acked_or_visible_and_reentrance(tmp_path: Path) -> None:
    m = OrderInfoManager(str(tmp_path), FakeClock())
    assert not m.check_block(KEY, "a", 0)
    assert m.update(KEY, "a", 1000, 500, [3, 5, 6]) == {3: 0, 5: 0, 6: 0}
    assert m.check_block(KEY, "b", 1200) and not m.check_block(KEY, "a", 1200)
    assert not m.check_block(KEY, "b", 1500)  # visible again
    assert m.commit_and_next(KEY, 5, 1000) == 3
    assert m.commit_and_next(KEY, 3, 1000) == 6
    assert m.commit_and_next(KEY, 4, 1000) == ACK_ILLEGAL
    assert m.commit_and_next(KEY, 6, 999) == ACK_STALE
    assert m.commit_and_next(KEY, 6, 1000) == 7
    assert not m.check_block(KEY, "b", 1200)  # all acked


def test_counts_grow_per_redelivery_but_not_for_the_same_attempt(tmp_path: Path) -> None:
    m = OrderInfoManager(str(tmp_path), FakeClock())
    m.update(KEY, "a", 1, 10, [0, 1])
    assert m.update(KEY, "a", 2, 10, [0, 1]) == {0: 0, 1: 0}
    assert m.update(KEY, "b", 3, 10, [0, 1, 2]) == {0: 1, 1: 1, 2: 0}
    assert m.update(KEY, None, 4, 10, [1, 2]) == {1: 2, 2: 1}


def test_visibility_change_and_persistence(tmp_path: Path) -> None:
    m = OrderInfoManager(str(tmp_path), FakeClock())
    m.update(KEY, "a", 1000, 60_000, [10, 12])
    assert m.change_visibility(KEY, 10, 1000, 1500)
    assert not m.change_visibility(KEY, 10, 999, 1500)
    m.commit_and_next(KEY, 12, 1000)
    assert not m.check_block(KEY, "b", 1600)
    info = m.get(KEY)
    assert info is not None and info.blocked_until() == 1500
    m.persist()
    loaded = OrderInfoManager(str(tmp_path), FakeClock())
    assert loaded.load()
    again = loaded.get(KEY)
    assert again is not None and again.offsets == [10, 12] and again.acked == {12}
    assert again.next_visible == {10: 1500} and again.attempt_id == "a"
