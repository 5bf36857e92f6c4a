"""Revive matching, the functional core of the revive service: which popped messages are due again.

One :class:`ReviveQueueState` per revive queue is fed the queue's records in log order. A checkpoint
becomes *pending*; acks set its bits; a checkpoint whose bits are all set is finished and forgotten. At
time ``now`` every pending checkpoint with ``popTime + invisibleTime <= now`` is *due*: its unacked
messages must go to the retry topic. After the revive service has written them it records a batch ack of
those offsets in the log (so a restart does not revive them twice) and calls :meth:`revived`.

Why this is safe without a timer wheel (upstream needs one, pop-and-storage §1.7):

- An ack is written after its checkpoint, and to the same revive queue, so reading the queue in order
  always meets the checkpoint first. Acks of a checkpoint not seen (already revived and passed, or written
  out of order after a failed checkpoint write) are kept in a bounded orphan table for a while, then
  dropped: the worst outcome is one more delivery, never a lost message.
- The revive service reads the queue to its end before asking what is due, so every ack stored before
  ``now`` has been seen.
- :meth:`ReviveQueueState.commit_offset` is the revive-queue offset from which a restarted broker must read
  again to rebuild this same state: the oldest pending checkpoint, or everything read when none is. It
  never passes a checkpoint whose messages are neither acked nor revived (upstream §6.3 / #10985 lose
  retries by committing past in-flight revives).

Keys are structured tuples (§6.1) and the state orders checkpoints by their log offset, never by start
offset (§6.2).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from orbitmq.broker.pop.records import AckMsg, CkKey, PopCheckPoint

__all__ = ["ORPHAN_ACKS_MAX", "PendingCheckpoint", "ReviveQueueState"]

#: Acks kept while their checkpoint has not been read (written out of order after a failed CK write).
ORPHAN_ACKS_MAX = 10_000


@dataclass(slots=True)
class PendingCheckpoint:
    ck: PopCheckPoint
    acked: int = 0  # bit i set: message i acked (or revived)

    @property
    def all_bits(self) -> int:
        return (1 << self.ck.num) - 1

    @property
    def finished(self) -> bool:
        return self.acked & self.all_bits == self.all_bits

    def unacked_offsets(self) -> list[int]:
        return [self.ck.offset_at(i) for i in range(self.ck.num) if not self.acked >> i & 1]

    def ack(self, offsets: Iterable[int]) -> None:
        for offset in offsets:
            index = self.ck.index_of_ack(offset)
            if index >= 0:  # an offset that is not in this checkpoint is ignored (§6.9 swallowed it)
                self.acked |= 1 << index


@dataclass(slots=True)
class ReviveQueueState:
    """Checkpoints of one revive queue that are neither fully acked nor revived."""

    #: Next revive-queue offset to read.
    next_offset: int
    _pending: dict[CkKey, PendingCheckpoint] = field(default_factory=dict)
    _orphans: collections.OrderedDict[CkKey, set[int]] = field(default_factory=collections.OrderedDict)
    #: Recently finished checkpoints: their later acks (duplicates, revive markers) are not orphans.
    _finished: collections.OrderedDict[CkKey, None] = field(default_factory=collections.OrderedDict)
    orphans_max: int = ORPHAN_ACKS_MAX
    #: Counters (the metrics exporter reads them).
    checkpoints_seen: int = 0
    acks_seen: int = 0
    orphan_acks: int = 0

    # -- feeding -----------------------------------------------------------------------------------------
    def on_checkpoint(self, ck: PopCheckPoint) -> None:
        """A checkpoint read at ``ck.revive_offset``. A repeated key (two identical change-invisible
        requests in one millisecond) is the same checkpoint: the first one read is kept."""
        self.checkpoints_seen += 1
        key = ck.key
        if key in self._pending:
            return
        pending = PendingCheckpoint(ck)
        early = self._orphans.pop(key, None)
        if early:
            pending.ack(early)
        if ck.num == 0 or pending.finished:
            return
        self._pending[key] = pending

    def on_ack(self, ack: AckMsg) -> None:
        self.acks_seen += 1
        key = ack.key
        pending = self._pending.get(key)
        if pending is None and key in self._finished:
            return
        if pending is None:
            self.orphan_acks += 1
            self._orphans.setdefault(key, set()).update(ack.ack_offsets)
            self._orphans.move_to_end(key)
            while len(self._orphans) > self.orphans_max:
                self._orphans.popitem(last=False)
            return
        pending.ack(ack.ack_offsets)
        if pending.finished:
            self._finish(key)

    def _finish(self, key: CkKey) -> None:
        del self._pending[key]
        self._finished[key] = None
        while len(self._finished) > self.orphans_max:
            self._finished.popitem(last=False)

    def read_up_to(self, next_offset: int) -> None:
        """Records below ``next_offset`` have been fed (or were not revive records)."""
        self.next_offset = max(self.next_offset, next_offset)

    # -- decisions ---------------------------------------------------------------------------------------
    def due(self, now_ms: int) -> list[PendingCheckpoint]:
        """Pending checkpoints whose invisible time has passed, oldest in the log first."""
        return [p for p in self._pending.values() if p.ck.revive_time <= now_ms]

    def revived(self, key: CkKey, offsets: Iterable[int]) -> None:
        """The revive service stored retries for ``offsets`` of the checkpoint ``key``."""
        pending = self._pending.get(key)
        if pending is None:
            return
        pending.ack(offsets)
        if pending.finished:
            self._finish(key)

    def commit_offset(self) -> int:
        """Where a restart must read again from: the oldest pending checkpoint, or all that was read."""
        for pending in self._pending.values():
            return min(pending.ck.revive_offset, self.next_offset)
        return self.next_offset

    # -- inspection --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[PendingCheckpoint]:
        return iter(list(self._pending.values()))

    def get(self, key: CkKey) -> PendingCheckpoint | None:
        return self._pending.get(key)

    def next_revive_time(self) -> int | None:
        """The earliest revive time of a pending checkpoint (None when nothing is pending)."""
        return min((p.ck.revive_time for p in self._pending.values()), default=None)
