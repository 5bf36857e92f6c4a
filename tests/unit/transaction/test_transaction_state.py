"""The transaction state machine and the table of live half records."""

from __future__ import annotations

import pytest

from orbitmq.broker.transaction import HalfRef, TransactionTable, TxEvent, TxState, transition
from orbitmq.broker.transaction.state import IllegalTransition


def ref(offset: int, uniq: str = "U1", born: int = 0, immunity: int = 6000, checks: int = 0) -> HalfRef:
    return HalfRef(offset, 1000 + offset, uniq, "PG", born, immunity, checks)


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (TxState.PREPARED, TxEvent.CHECK, TxState.PREPARED),
        (TxState.PREPARED, TxEvent.COMMIT, TxState.COMMITTING),
        (TxState.COMMITTING, TxEvent.STORED, TxState.COMMITTED),
        (TxState.COMMITTING, TxEvent.FAILED, TxState.PREPARED),
        (TxState.PREPARED, TxEvent.ROLLBACK, TxState.ROLLED_BACK),
        (TxState.PREPARED, TxEvent.DISCARD, TxState.DISCARDED),
    ],
)
def test_legal_transitions(state: TxState, event: TxEvent, after: TxState) -> None:
    assert transition(state, event) is after


@pytest.mark.parametrize("state", list(TxState))
@pytest.mark.parametrize("event", list(TxEvent))
def test_every_other_transition_is_illegal(state: TxState, event: TxEvent) -> None:
    legal = {
        (TxState.PREPARED, TxEvent.CHECK), (TxState.PREPARED, TxEvent.COMMIT), (TxState.COMMITTING, TxEvent.STORED),
        (TxState.COMMITTING, TxEvent.FAILED), (TxState.PREPARED, TxEvent.ROLLBACK), (TxState.PREPARED, TxEvent.DISCARD),
    }  # fmt: skip
    if (state, event) in legal:
        return
    with pytest.raises(IllegalTransition):
        transition(state, event)


def test_a_decision_settles_every_live_copy_of_the_transaction() -> None:
    table = TransactionTable()
    table.add(ref(0))
    table.add(ref(1, "U2"))
    table.renew(ref(0), ref(5, checks=1))  # a back-check put half 0 back as half 5
    assert table.half(0) is None and table.half(5) is not None and len(table) == 2
    assert table.apply("U1", TxEvent.COMMIT) == []  # committing: not settled yet
    settled = table.apply("U1", TxEvent.STORED)
    assert [h.queue_offset for h in settled] == [5]
    assert table.get("U1") is None and len(table) == 1
    with pytest.raises(KeyError):
        table.apply("U1", TxEvent.ROLLBACK)  # settled transactions have left the table


def test_a_failed_commit_leaves_the_transaction_prepared() -> None:
    table = TransactionTable()
    table.add(ref(3))
    table.apply("U1", TxEvent.COMMIT)
    with pytest.raises(IllegalTransition):
        table.apply("U1", TxEvent.COMMIT)  # a second commit while the first one is being stored
    table.apply("U1", TxEvent.FAILED)
    txn = table.get("U1")
    assert txn is not None and txn.state is TxState.PREPARED and list(txn.halves) == [3]


def test_due_half_records_and_the_low_offset() -> None:
    table = TransactionTable()
    table.add(ref(2, "A", born=1000))  # due after 7000
    table.add(ref(4, "B", born=5000, immunity=60_000))  # CHECK_IMMUNITY of a minute
    table.add(ref(7, "C", born=20_000))  # born "in the future" (producer clock ahead): checked at once
    assert [h.queue_offset for h in table.due(7000, 100)] == [7]
    assert [h.queue_offset for h in table.due(7001, 100)] == [2, 7]
    assert [h.queue_offset for h in table.due(70_000, 100)] == [2, 4, 7]
    assert [h.queue_offset for h in table.due(70_000, 5)] == [2, 4]  # copies stored in this pass wait
    table.apply("A", TxEvent.COMMIT)
    assert [h.queue_offset for h in table.due(70_000, 100)] == [4, 7]  # committing: not checked
    assert table.low_offset(99) == 2
    table.apply("A", TxEvent.STORED)
    assert table.low_offset(99) == 4
    table.remove_half(4)
    table.remove_half(7)
    assert table.low_offset(99) == 99 and table.transactions == 0
