"""Undecided transactions: an explicit state machine and the table of live half messages (pure state).

A transaction is known by its ``UNIQ_KEY`` (the ``transactionId`` on the wire). It may have several live
half records: the original and, after back-checks, the copies put back at the end of the half queue. Any
decision names one of them (its CommitLog and half-queue offsets) and settles all of them.

States and events (:func:`transition`); an illegal transition raises and changes nothing::

    PREPARED  --CHECK-->     PREPARED     a back-check renewed its half record
    PREPARED  --COMMIT-->    COMMITTING   the real message is being stored
    COMMITTING --STORED-->   COMMITTED    (final)
    COMMITTING --FAILED-->   PREPARED     storing failed: still undecided
    PREPARED  --ROLLBACK-->  ROLLED_BACK  (final)
    PREPARED  --DISCARD-->   DISCARDED    (final) checks ran out: moved to TRANS_CHECK_MAX_TIME_TOPIC

A decision that arrives while the transaction is COMMITTING, or once it is final (it has left the table),
is answered without storing anything again: a transaction is committed at most once per broker run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from orbitmq.core.errors import OrbitError

__all__ = [
    "HalfRef",
    "IllegalTransition",
    "Transaction",
    "TransactionTable",
    "TxEvent",
    "TxState",
    "transition",
]


class TxState(enum.Enum):
    PREPARED = "prepared"
    COMMITTING = "committing"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"
    DISCARDED = "discarded"


class TxEvent(enum.Enum):
    CHECK = "check"
    COMMIT = "commit"
    STORED = "stored"
    FAILED = "failed"
    ROLLBACK = "rollback"
    DISCARD = "discard"


_TRANSITIONS: Final = {
    (TxState.PREPARED, TxEvent.CHECK): TxState.PREPARED,
    (TxState.PREPARED, TxEvent.COMMIT): TxState.COMMITTING,
    (TxState.COMMITTING, TxEvent.STORED): TxState.COMMITTED,
    (TxState.COMMITTING, TxEvent.FAILED): TxState.PREPARED,
    (TxState.PREPARED, TxEvent.ROLLBACK): TxState.ROLLED_BACK,
    (TxState.PREPARED, TxEvent.DISCARD): TxState.DISCARDED,
}
FINAL: Final = frozenset({TxState.COMMITTED, TxState.ROLLED_BACK, TxState.DISCARDED})


class IllegalTransition(OrbitError):
    pass


def transition(state: TxState, event: TxEvent) -> TxState:
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"a {state.value} transaction cannot {event.value}") from None


@dataclass(slots=True)
class HalfRef:
    """A live half record: where it is and what the check service needs to know about it."""

    queue_offset: int  # in RMQ_SYS_TRANS_HALF_TOPIC queue 0 (tranStateTableOffset)
    phy: int  # CommitLog offset (commitLogOffset)
    uniq: str  # transactionId
    group: str  # PGROUP
    born_ms: int
    immunity_ms: int
    check_times: int
    #: Rebuilt after an unclean stop: a commit may already be in the log (see TransactionalMessageService).
    recovered: bool = False


@dataclass(slots=True)
class Transaction:
    uniq: str
    state: TxState = TxState.PREPARED
    halves: dict[int, HalfRef] = field(default_factory=dict)  # queue offset -> live half record


class TransactionTable:
    def __init__(self) -> None:
        self._txns: dict[str, Transaction] = {}
        self._halves: dict[int, HalfRef] = {}

    def __len__(self) -> int:
        """Live half records."""
        return len(self._halves)

    @property
    def transactions(self) -> int:
        return len(self._txns)

    def get(self, uniq: str) -> Transaction | None:
        return self._txns.get(uniq)

    def half(self, queue_offset: int) -> HalfRef | None:
        return self._halves.get(queue_offset)

    def add(self, ref: HalfRef) -> None:
        """A half record was stored (or found by a rebuild)."""
        txn = self._txns.get(ref.uniq)
        if txn is None:
            txn = self._txns[ref.uniq] = Transaction(ref.uniq)
        txn.halves[ref.queue_offset] = ref
        self._halves[ref.queue_offset] = ref

    def remove_half(self, queue_offset: int) -> HalfRef | None:
        """Forget one half record (an op record names it); the transaction goes when it has none left."""
        ref = self._halves.pop(queue_offset, None)
        if ref is not None:
            txn = self._txns[ref.uniq]
            del txn.halves[queue_offset]
            if not txn.halves and txn.state is TxState.PREPARED:
                del self._txns[ref.uniq]
        return ref

    def renew(self, old: HalfRef, new: HalfRef) -> None:
        """A back-check put ``old`` back as ``new``: only the copy stays live."""
        txn = self._txns[old.uniq]
        txn.state = transition(txn.state, TxEvent.CHECK)
        self.remove_half(old.queue_offset)
        self.add(new)

    def apply(self, uniq: str, event: TxEvent) -> list[HalfRef]:
        """Apply a decision; returns the half records it settles (empty until the decision is final)."""
        txn = self._txns[uniq]
        txn.state = transition(txn.state, event)
        if txn.state not in FINAL:
            return []
        del self._txns[uniq]
        for offset in txn.halves:
            self._halves.pop(offset, None)
        return sorted(txn.halves.values(), key=lambda r: r.queue_offset)

    def due(self, now_ms: int, below_offset: int) -> list[HalfRef]:
        """Prepared half records whose wait is over (or whose born time is in the future), in queue order,
        among those stored before ``below_offset`` (copies renewed in this pass wait for the next one)."""
        out = []
        for ref in self._halves.values():
            if ref.queue_offset >= below_offset or self._txns[ref.uniq].state is not TxState.PREPARED:
                continue
            age = now_ms - ref.born_ms
            if age > ref.immunity_ms or age < 0:
                out.append(ref)
        out.sort(key=lambda r: r.queue_offset)
        return out

    def low_offset(self, default: int) -> int:
        """The smallest live half-queue offset (where a rebuild starts), ``default`` when none is live."""
        return min(self._halves, default=default)
