"""The ordered offset commit of pops (orbitmq.broker.pop.inflight)."""

from __future__ import annotations

from pathlib import Path

from orbitmq.broker.offsets import ConsumerOffsetManager
from orbitmq.broker.pop.inflight import PopOffsets
from orbitmq.core.clock import FakeClock

KEY = ("T", "G", 0)


def offsets(tmp_path: Path) -> ConsumerOffsetManager:
    return ConsumerOffsetManager(str(tmp_path), FakeClock())


def test_commits_in_pop_order_only_past_done_entries(tmp_path: Path) -> None:
    table = offsets(tmp_path)
    pops = PopOffsets(table)
    assert pops.pop_offset(KEY, 0) == 0
    first = pops.begin(KEY, 4)
    second = pops.begin(KEY, 9)
    assert pops.pop_offset(KEY, 0) == 9 and pops.in_flight(KEY) == 2
    pops.complete(second)  # its checkpoint is stored first, but the first pop's is not: no commit
    assert table.query_offset("G", "T", 0) is None
    pops.complete(first)
    assert table.query_offset("G", "T", 0) == 9 and pops.in_flight(KEY) == 0
    assert pops.pop_offset(KEY, 9) == 9


def test_mock_entries_wait_behind_earlier_pops(tmp_path: Path) -> None:
    table = offsets(tmp_path)
    pops = PopOffsets(table)
    first = pops.begin(KEY, 3)
    pops.mock(KEY, 8)  # a read that found only filtered-out messages
    assert table.query_offset("G", "T", 0) is None and pops.pop_offset(KEY, 0) == 8
    pops.complete(first)
    assert table.query_offset("G", "T", 0) == 8


def test_reset_forgets_in_flight_and_commits(tmp_path: Path) -> None:
    table = offsets(tmp_path)
    pops = PopOffsets(table)
    stale = pops.begin(KEY, 50)
    pops.reset(KEY, 7)
    assert table.query_offset("G", "T", 0) == 7 and pops.pop_offset(KEY, 7) == 7
    pops.complete(stale)  # a late completion of a forgotten pop changes nothing
    assert table.query_offset("G", "T", 0) == 7


def test_commit_never_moves_back(tmp_path: Path) -> None:
    table = offsets(tmp_path)
    table.commit_offset("G", "T", 0, 20)
    pops = PopOffsets(table)
    pops.complete(pops.begin(KEY, 10))
    assert table.query_offset("G", "T", 0) == 20
