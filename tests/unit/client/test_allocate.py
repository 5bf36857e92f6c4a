"""Allocation strategies: every member running the strategy partitions the queues, deterministically."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from orbitmq.client.allocate import (
    AllocateStrategy,
    averagely,
    averagely_by_circle,
    by_config,
    by_machine_room,
    consistent_hash,
    machine_room_nearby,
    md5_hash,
)
from orbitmq.client.model import MessageQueue

G = "G"


def _queues(n: int, brokers: tuple[str, ...] = ("broker-a",)) -> list[MessageQueue]:
    return sorted(MessageQueue("T", b, i) for b in brokers for i in range(n))


cid_lists = st.lists(
    st.text("abcdef0123456789@.", min_size=1, max_size=12), min_size=1, max_size=12, unique=True
).map(sorted)
queue_lists = st.builds(
    _queues,
    st.integers(0, 20),
    st.lists(
        st.sampled_from(["broker-a", "broker-b", "r1@b1", "r2@b2"]), min_size=1, max_size=3, unique=True
    ).map(tuple),
)

PARTITIONING: list[AllocateStrategy] = [
    averagely,
    averagely_by_circle,
    consistent_hash(),
    consistent_hash(3),
    machine_room_nearby(averagely),
]


def _shares(
    strategy: AllocateStrategy, queues: list[MessageQueue], cids: list[str]
) -> dict[str, list[MessageQueue]]:
    return {c: strategy(G, c, queues, cids) for c in cids}


@given(queue_lists, cid_lists, st.sampled_from(range(len(PARTITIONING))))
def test_every_queue_owned_by_exactly_one_member(queues: list[MessageQueue], cids: list[str], k: int) -> None:
    shares = _shares(PARTITIONING[k], queues, cids)
    owned = Counter(mq for share in shares.values() for mq in share)
    assert set(owned) == set(queues)
    assert all(v == 1 for v in owned.values())


@given(queue_lists, cid_lists, st.sampled_from(range(len(PARTITIONING))))
def test_same_inputs_same_result(queues: list[MessageQueue], cids: list[str], k: int) -> None:
    strategy = PARTITIONING[k]
    for c in cids:
        assert strategy(G, c, queues, cids) == strategy(G, c, list(queues), list(cids))


@given(queue_lists, cid_lists, st.sampled_from(range(len(PARTITIONING))))
def test_unknown_cid_gets_nothing(queues: list[MessageQueue], cids: list[str], k: int) -> None:
    assert PARTITIONING[k](G, "not-a-member", queues, cids) == []
    assert by_machine_room({"r1"})(G, "not-a-member", queues, cids) == []


@given(queue_lists, cid_lists)
def test_averagely_blocks_are_balanced_and_consecutive(queues: list[MessageQueue], cids: list[str]) -> None:
    shares = _shares(averagely, queues, cids)
    sizes = [len(shares[c]) for c in cids]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger blocks go to the first consumers
    assert [mq for c in cids for mq in shares[c]] == queues  # consecutive, in cid order


@given(queue_lists, cid_lists)
def test_by_circle_is_balanced(queues: list[MessageQueue], cids: list[str]) -> None:
    sizes = [len(s) for s in _shares(averagely_by_circle, queues, cids).values()]
    assert max(sizes) - min(sizes) <= 1


@given(queue_lists, cid_lists)
def test_machine_room_takes_only_listed_rooms_and_partitions_them(
    queues: list[MessageQueue], cids: list[str]
) -> None:
    shares = _shares(by_machine_room({"r1", "r2"}), queues, cids)
    owned = Counter(mq for s in shares.values() for mq in s)
    assert set(owned) == {mq for mq in queues if mq.broker_name.startswith(("r1@", "r2@"))}
    assert all(v == 1 for v in owned.values())
    sizes = [len(s) for s in shares.values()]
    assert max(sizes) - min(sizes) <= 1


def test_averagely_ten_queues_four_consumers_is_3_3_2_2() -> None:
    queues, cids = _queues(10), ["c0", "c1", "c2", "c3"]
    assert [len(averagely(G, c, queues, cids)) for c in cids] == [3, 3, 2, 2]
    assert averagely(G, "c1", queues, cids) == queues[3:6]
    assert averagely(G, "c0", _queues(1), ["c0", "c1"]) == _queues(1)
    assert averagely(G, "c1", _queues(1), ["c0", "c1"]) == []


def test_by_circle_takes_every_mth_queue() -> None:
    queues = _queues(5)
    assert averagely_by_circle(G, "b", queues, ["a", "b"]) == [queues[1], queues[3]]


def test_md5_hash_is_first_four_bytes_big_endian() -> None:
    # md5("a") = 0cc175b9c0f1b6a8...
    assert md5_hash("a") == 0x0CC175B9


def test_consistent_hash_moves_few_queues_when_a_member_joins() -> None:
    queues = _queues(64, ("broker-a", "broker-b"))
    before = _shares(consistent_hash(), queues, ["c1", "c2", "c3"])
    after = _shares(consistent_hash(), queues, ["c1", "c2", "c3", "c4"])
    moved = sum(1 for c in ("c1", "c2", "c3") for mq in before[c] if mq not in after[c])
    assert moved == len(after["c4"])  # only queues taken by the newcomer change hands


def test_by_config_returns_the_configured_list() -> None:
    fixed = _queues(2)
    assert by_config(fixed)(G, "anyone", _queues(8), ["x"]) == fixed


def test_machine_room_nearby_prefers_own_room_and_shares_orphan_rooms() -> None:
    queues = sorted(
        [MessageQueue("T", "r1@b", i) for i in range(4)]
        + [MessageQueue("T", "r2@b", i) for i in range(2)]
        + [MessageQueue("T", "r3@b", i) for i in range(2)]
    )
    cids = sorted(["10.0.0.1@p1@r1", "10.0.0.2@p2@r2"])
    nearby = machine_room_nearby(averagely)
    r1 = nearby(G, "10.0.0.1@p1@r1", queues, cids)
    r2 = nearby(G, "10.0.0.2@p2@r2", queues, cids)
    assert [mq for mq in r1 if mq.broker_name.startswith("r1@")] == queues[:4]
    assert all(not mq.broker_name.startswith("r1@") for mq in r2)
    assert {mq.broker_name for mq in r1 + r2 if mq.broker_name.startswith("r3@")} == {"r3@b"}
    assert len([mq for mq in r1 + r2 if mq.broker_name.startswith("r3@")]) == 2
