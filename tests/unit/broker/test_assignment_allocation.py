"""Broker-side POP allocation (upstream ``allocate4Pop``) as properties, plus the mode table.

The properties are upstream's ``QueryAssignmentProcessorTest.testAllocate4Pop`` (pop-and-storage §2 S0):
never empty, never more than the queue set, every queue when the share is ≤ 0 or ≥ |cids| - 1, one queue
when clients outnumber queues, and for the AVG strategies a size of avg·(share+1) .. (avg+1)·(share+1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitmq.broker.assignment import (
    ALL_QUEUES,
    STRATEGIES,
    MessageRequestMode,
    MessageRequestModeManager,
    RequestModeSetting,
    allocate_for_pop,
    assign,
    changed_pop_assignments,
)
from orbitmq.broker.locks import MessageQueue
from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import ProtocolError, StoreError

GROUP = "G"


def queues_of(n: int, brokers: int = 1) -> list[MessageQueue]:
    return sorted(MessageQueue("T", f"broker-{b}", q) for b in range(brokers) for q in range(n))


def cids_of(n: int) -> list[str]:
    return sorted(f"10.0.0.{i}@{i}" for i in range(n))


sizes = st.integers(min_value=1, max_value=16)
strategy_names = st.sampled_from(sorted(STRATEGIES))


@settings(max_examples=400, deadline=None)
@given(n_queues=sizes, n_cids=sizes, share=st.integers(min_value=-1, max_value=16), name=strategy_names,
       brokers=st.integers(min_value=1, max_value=3))  # fmt: skip
def test_pop_allocation_properties(n_queues: int, n_cids: int, share: int, name: str, brokers: int) -> None:
    mqs, cids, strategy = queues_of(n_queues, brokers), cids_of(n_cids), STRATEGIES[name]
    total = len(mqs)
    for cid in cids:
        result = allocate_for_pop(strategy, GROUP, cid, mqs, cids, share)
        assert result, "a POP client is never left without a queue"
        assert len(result) <= total
        if share <= 0 or share >= n_cids - 1:
            # Every queue, expressed as "all queues" of each broker (queue id -1).
            assert len(result) == total
            assert {q.queue_id for q in result} == {ALL_QUEUES}
            assert {q.broker_name for q in result} == {q.broker_name for q in mqs}
        elif total < n_cids:
            assert result == [mqs[cids.index(cid) % total]]
        else:
            avg = total // n_cids
            if total % n_cids == 0:
                assert len(result) == avg * (share + 1)
            else:
                assert avg * (share + 1) <= len(result) <= (avg + 1) * (share + 1)


@settings(max_examples=300, deadline=None)
@given(n_queues=sizes, n_cids=sizes, share=st.integers(min_value=1, max_value=15), name=strategy_names)
def test_shared_queues_are_popped_by_share_plus_one_clients(
    n_queues: int, n_cids: int, share: int, name: str
) -> None:
    """The share semantics: a client also pops the queues of the ``share`` clients after it in the ring, so
    each queue is popped by its owner and the ``share`` clients before the owner (when every client owns
    some queue and the share is below |cids| - 1)."""
    mqs, cids, strategy = queues_of(n_queues), cids_of(n_cids), STRATEGIES[name]
    if not (n_cids <= n_queues and share < n_cids - 1):
        return
    poppers: dict[MessageQueue, int] = {}
    for cid in cids:
        for q in set(allocate_for_pop(strategy, GROUP, cid, mqs, cids, share)):
            poppers[q] = poppers.get(q, 0) + 1
    assert set(poppers) == set(mqs), "every queue is popped by someone"
    assert set(poppers.values()) == {share + 1}


@settings(max_examples=200, deadline=None)
@given(n_queues=sizes, n_cids=sizes, name=strategy_names)
def test_pull_assignment_partitions_the_queues(n_queues: int, n_cids: int, name: str) -> None:
    mqs, cids = queues_of(n_queues, 2), cids_of(n_cids)
    setting = RequestModeSetting("T", GROUP, MessageRequestMode.PULL)
    owned = [assign(setting, STRATEGIES[name], cid, mqs, cids) for cid in cids]
    assert sum(len(o) for o in owned) == len(mqs)
    assert set().union(*owned) == set(mqs)


def test_a_client_unknown_to_the_broker_gets_nothing_unless_it_pops_everything() -> None:
    mqs, cids = queues_of(4), cids_of(2)
    stranger = "10.9.9.9@x"
    shared = RequestModeSetting("T", GROUP, MessageRequestMode.POP, 1)
    assert assign(shared, STRATEGIES["AVG"], stranger, mqs, cids_of(4)) == set()
    everything = RequestModeSetting("T", GROUP, MessageRequestMode.POP, 0)
    assert assign(everything, STRATEGIES["AVG"], stranger, mqs, cids) == {MessageQueue("T", "broker-0", -1)}


def test_changed_pop_assignments_names_only_members_whose_queues_moved() -> None:
    mqs = queues_of(8)
    a, b, c = "10.0.0.1@a", "10.0.0.2@b", "10.0.0.3@c"
    shared = RequestModeSetting("T", GROUP, MessageRequestMode.POP, 1)
    strategy = STRATEGIES["AVG"]
    # 3 clients, share 1 < 3 - 1: a new member reshuffles the AVG blocks of the old ones.
    assert changed_pop_assignments(shared, strategy, mqs, [a, b, c], [a, b, c, "10.0.0.4@d"]) == [a, b, c]
    # Share 0 (pop everything): membership never changes anyone's assignment.
    everything = RequestModeSetting("T", GROUP, MessageRequestMode.POP, 0)
    assert changed_pop_assignments(everything, strategy, mqs, [a, b], [a, b, c]) == []
    # A PULL topic is never announced (its members balance locally).
    pull = RequestModeSetting("T", GROUP, MessageRequestMode.PULL)
    assert changed_pop_assignments(pull, strategy, mqs, [a, b], [a]) == []
    # Crossing the "share >= |cids| - 1" threshold: b goes from all queues to a shared block.
    assert changed_pop_assignments(shared, strategy, mqs, [a, b], [a, b, c]) == [a, b]


# -- the persisted table ------------------------------------------------------------------------------------
def test_mode_table_round_trips_through_its_file(tmp_path: Path) -> None:
    clock = FakeClock()
    modes = MessageRequestModeManager(str(tmp_path), clock)
    assert modes.set_mode(RequestModeSetting("T", GROUP, MessageRequestMode.POP, 2)) is None
    previous = modes.set_mode(RequestModeSetting("T", GROUP, MessageRequestMode.PULL))
    assert previous == RequestModeSetting("T", GROUP, MessageRequestMode.POP, 2)
    modes.set_mode(RequestModeSetting("U", "H", MessageRequestMode.POP, -1))
    assert modes.dirty
    modes.persist()
    again = MessageRequestModeManager(str(tmp_path), clock)
    assert again.load()
    assert again.get_mode("T", GROUP) == RequestModeSetting("T", GROUP, MessageRequestMode.PULL)
    assert again.group_modes("H") == {"U": RequestModeSetting("U", "H", MessageRequestMode.POP, -1)}
    assert again.table_json("H") == {
        "messageRequestModeMap": {
            "U": {"H": {"consumerGroup": "H", "mode": "POP", "popShareQueueNum": -1, "topic": "U"}}
        }
    }
    assert (tmp_path / "config" / "messageRequestMode.json").exists()


def test_effective_mode_defaults_and_retry_topics(tmp_path: Path) -> None:
    modes = MessageRequestModeManager(str(tmp_path), FakeClock())
    pop, pull = MessageRequestMode.POP, MessageRequestMode.PULL
    assert modes.effective("T", GROUP, pull, -1).mode is pull
    assert modes.effective("T", GROUP, pop, 3) == RequestModeSetting("T", GROUP, pop, 3)
    assert modes.effective("%RETRY%G", GROUP, pop, 3).mode is pull  # retry topics are always PULL


def test_a_java_written_file_with_defaults_left_out_loads(tmp_path: Path) -> None:
    path = tmp_path / "config" / "messageRequestMode.json"
    path.parent.mkdir()
    # fastjson leaves out nothing here, but a hand-written entry may lack mode/popShareQueueNum.
    path.write_text('{"messageRequestModeMap":{"T":{"G":{"topic":"T","consumerGroup":"G"}}}}')
    modes = MessageRequestModeManager(str(tmp_path), FakeClock())
    assert modes.load()
    assert modes.get_mode("T", "G") == RequestModeSetting("T", "G", MessageRequestMode.PULL, 0)


def test_a_corrupt_entry_is_a_store_error_not_a_silent_default(tmp_path: Path) -> None:
    path = tmp_path / "config" / "messageRequestMode.json"
    path.parent.mkdir()
    path.write_text('{"messageRequestModeMap":{"T":{"G":{"topic":"T","consumerGroup":"G","mode":"PUSH"}}}}')
    with pytest.raises(StoreError, match="PUSH"):
        MessageRequestModeManager(str(tmp_path), FakeClock()).load()


@pytest.mark.parametrize(
    "body",
    [[], {"topic": "T"}, {"topic": "", "consumerGroup": "G"}, {"topic": "T", "consumerGroup": "G", "mode": 3},
     {"topic": "T", "consumerGroup": "G", "popShareQueueNum": "x"},
     {"topic": "T", "consumerGroup": "G", "popShareQueueNum": True}],
)  # fmt: skip
def test_bad_mode_bodies_are_protocol_errors(body: object) -> None:
    with pytest.raises(ProtocolError):
        RequestModeSetting.from_json(body)
