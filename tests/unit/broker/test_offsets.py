"""ConsumerOffsetManager in memory: commits, queries, removal, data version."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orbitmq.broker.offsets import ConsumerOffsetManager, topic_group_key
from orbitmq.core.clock import FakeClock


def manager(tmp: str = "/nonexistent", step: int = 500) -> ConsumerOffsetManager:
    return ConsumerOffsetManager(tmp, FakeClock(), version_step=step)


def test_absent_offset_is_none() -> None:
    m = manager()
    assert m.query_offset("g", "t", 0) is None
    assert m.query_offsets("g", "t") == {}
    assert not m.dirty


def test_commit_and_query() -> None:
    m = manager()
    assert m.commit_offset("g", "t", 0, 5)
    assert m.commit_offset("g", "t", 1, 7)
    assert m.query_offset("g", "t", 0) == 5
    assert m.query_offsets("g", "t") == {0: 5, 1: 7}
    assert m.dirty


def test_negative_commit_never_overwrites_and_never_creates() -> None:
    m = manager()
    assert not m.commit_offset("g", "t", 0, -1)
    assert m.query_offset("g", "t", 0) is None
    assert m.groups_of_topic("t") == set()
    assert not m.dirty
    m.commit_offset("g", "t", 0, 9)
    assert not m.commit_offset("g", "t", 0, -1)
    assert m.query_offset("g", "t", 0) == 9
    assert not m.commit_offset("g", "t", -1, 3)
    assert m.query_offsets("g", "t") == {0: 9}


def test_lower_commit_is_stored_and_logged(caplog) -> None:
    m = manager()
    m.commit_offset("g", "t", 0, 9)
    assert m.commit_offset("g", "t", 0, 3, client_host="1.2.3.4:5")
    assert m.query_offset("g", "t", 0) == 3
    assert "moved back" in caplog.text and "1.2.3.4:5" in caplog.text


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 1000)), max_size=60))
def test_offsets_are_the_last_non_negative_commit(commits: list[tuple[int, int]]) -> None:
    m = manager()
    expected: dict[int, int] = {}
    for queue, offset in commits:
        m.commit_offset("g", "t", queue, offset)
        if offset >= 0:
            expected[queue] = offset
    assert m.query_offsets("g", "t") == expected
    for queue in range(4):
        got = m.query_offset("g", "t", queue)
        assert got == expected.get(queue)
        assert got is None or got >= 0


def test_data_version_moves_every_step_commits() -> None:
    m = manager(step=3)
    start = m.data_version.counter
    for i in range(2):
        m.commit_offset("g", "t", 0, i)
    assert m.data_version.counter == start
    m.commit_offset("g", "t", 0, 2)
    assert m.data_version.counter == start + 1


def test_groups_and_topics_views() -> None:
    m = manager()
    m.commit_offset("g1", "t1", 0, 1)
    m.commit_offset("g2", "t1", 0, 1)
    m.commit_offset("g1", "t2", 0, 1)
    assert m.groups_of_topic("t1") == {"g1", "g2"}
    assert m.topics_of_group("g1") == {"t1", "t2"}
    assert m.group_topic_map() == {"g1": {"t1", "t2"}, "g2": {"t1"}}
    assert set(m.table()) == {
        topic_group_key("t1", "g1"),
        topic_group_key("t1", "g2"),
        topic_group_key("t2", "g1"),
    }


def test_remove_group_topic_and_pair() -> None:
    m = manager()
    for g in ("g1", "g2"):
        for t in ("t1", "t2"):
            m.commit_offset(g, t, 0, 1)
    assert m.remove_group("g1") == 2
    assert m.topics_of_group("g1") == set()
    assert m.remove_topic("t1") == 1
    assert m.groups_of_topic("t1") == set()
    assert m.remove_offset("g2", "t2")
    assert not m.remove_offset("g2", "t2")
    assert m.table() == {}


def test_remove_group_does_not_touch_a_group_whose_name_contains_it() -> None:
    m = manager()
    m.commit_offset("g", "t", 0, 1)
    m.commit_offset("gg", "t", 0, 2)
    m.remove_group("g")
    assert m.query_offset("gg", "t", 0) == 2


def test_assign_offset_creates_the_key() -> None:
    m = manager()
    m.assign_offset("g", "t", 2, 40)
    assert m.query_offset("g", "t", 2) == 40


def test_pull_offset_falls_back_to_committed() -> None:
    m = manager()
    assert m.query_pull_offset("g", "t", 0) is None
    m.commit_offset("g", "t", 0, 4)
    assert m.query_pull_offset("g", "t", 0) == 4
    m.commit_pull_offset("g", "t", 0, 10)
    assert m.query_pull_offset("g", "t", 0) == 10
    assert m.query_offset("g", "t", 0) == 4


def test_clone_offset() -> None:
    m = manager()
    assert not m.clone_offset("a", "b", "t")
    m.commit_offset("a", "t", 0, 3)
    assert m.clone_offset("a", "b", "t")
    assert m.query_offsets("b", "t") == {0: 3}
