"""The timer index: which parked messages are due when, 8 bytes per pending message, no bodies.

A parked message is known by its CommitLog offset (where its record is) and its delivery time. Time is
cut into slots of ``timerPrecisionMs``; each slot holds a compact ``array('q')`` of
``commit log offset << 10 | ms into the slot`` (the precision is at most 1000 ms, so the remainder fits in
10 bits), and a heap of slot numbers says which slot comes next. One million pending messages take about
8 MB plus a small per-slot overhead; the message bodies stay in the CommitLog.

For the progress marker the index also knows a timer-queue offset at or below every pending message's
(:meth:`TimerIndex.low_queue_offset`, where a rebuild starts reading). Messages are counted per chunk of
4096 queue offsets; the timer queue is appended in order, so CommitLog offsets grow with queue offsets
and a delivered message's chunk is found by bisecting the chunks' first CommitLog offsets.

Pure state: no I/O, no clock. :class:`~orbitmq.broker.timer.service.TimerMessageService` drives it.
"""

from __future__ import annotations

import bisect
import heapq
import sys
from array import array
from typing import NamedTuple

__all__ = ["Due", "TimerIndex"]

_MS_BITS = 10
_MS_MASK = (1 << _MS_BITS) - 1
#: Queue offsets per chunk, for :meth:`TimerIndex.low_queue_offset`.
CHUNK = 4096


class Due(NamedTuple):
    """One pending message: when, and where its record is (a tuple: sorting stays in C)."""

    deliver_ms: int
    phy: int


class TimerIndex:
    def __init__(self, precision_ms: int) -> None:
        if not 0 < precision_ms <= _MS_MASK:
            raise ValueError(f"timer precision {precision_ms} ms is outside 1..{_MS_MASK}")
        self.precision_ms = precision_ms
        self._slots: dict[int, array[int]] = {}
        self._heap: list[int] = []
        # Chunks of pending messages, sorted: chunk number, its smallest CommitLog offset, its count.
        self._chunk_ids: list[int] = []
        self._chunk_phys: list[int] = []
        self._chunk_counts: list[int] = []
        self._size = 0

    def __len__(self) -> int:
        """Pending messages: in a slot, or taken out by :meth:`take_slot` and not yet :meth:`done`."""
        return self._size

    @property
    def slot_count(self) -> int:
        return len(self._slots)

    def slot_start_ms(self, slot: int) -> int:
        return slot * self.precision_ms

    # -- adding ----------------------------------------------------------------------------------------
    def add(self, deliver_ms: int, phy: int, queue_offset: int) -> None:
        """A newly parked message (counted as pending)."""
        self._put(deliver_ms, phy)
        self._count(queue_offset // CHUNK, phy)
        self._size += 1

    def restore(self, dues: list[Due]) -> None:
        """Put back messages taken with :meth:`take_slot` that could not be delivered (still pending)."""
        for due in dues:
            self._put(due.deliver_ms, due.phy)

    def _put(self, deliver_ms: int, phy: int) -> None:
        slot, ms = divmod(deliver_ms, self.precision_ms)
        entries = self._slots.get(slot)
        if entries is None:
            entries = self._slots[slot] = array("q")
            heapq.heappush(self._heap, slot)
        entries.append(phy << _MS_BITS | ms)

    def _count(self, chunk: int, phy: int) -> None:
        ids = self._chunk_ids
        if ids and ids[-1] == chunk:  # the usual case: arrivals in queue order
            i = len(ids) - 1
        else:
            i = bisect.bisect_left(ids, chunk)
            if i == len(ids) or ids[i] != chunk:
                ids.insert(i, chunk)
                self._chunk_phys.insert(i, phy)
                self._chunk_counts.insert(i, 0)
        self._chunk_phys[i] = min(self._chunk_phys[i], phy)
        self._chunk_counts[i] += 1

    # -- taking ----------------------------------------------------------------------------------------
    def earliest_slot(self) -> int | None:
        heap = self._heap
        while heap and heap[0] not in self._slots:
            heapq.heappop(heap)  # a slot taken and not re-created
        return heap[0] if heap else None

    def take_slot(self, slot: int) -> list[Due]:
        """Remove a slot's messages (they stay pending until :meth:`done`), sorted by time and offset."""
        entries = self._slots.pop(slot, None)
        if entries is None:
            return []
        base = slot * self.precision_ms
        return sorted(Due(base + (v & _MS_MASK), v >> _MS_BITS) for v in entries)

    def done(self, phy: int) -> None:
        """A taken message was delivered (or dropped for good): it is no longer pending."""
        i = bisect.bisect_right(self._chunk_phys, phy) - 1
        if i < 0:
            raise KeyError(f"CommitLog offset {phy} is not pending")
        self._chunk_counts[i] -= 1
        if not self._chunk_counts[i]:
            del self._chunk_ids[i], self._chunk_phys[i], self._chunk_counts[i]
        self._size -= 1

    def memory_bytes(self) -> int:
        """What the slots take in memory (arrays, their dict and heap entries; not taken-out messages)."""
        arrays = sum(sys.getsizeof(a) for a in self._slots.values())
        return arrays + sys.getsizeof(self._slots) + sys.getsizeof(self._heap) + 28 * len(self._heap)

    # -- progress --------------------------------------------------------------------------------------
    def low_queue_offset(self, default: int) -> int:
        """A timer queue offset at or below every pending message's (a chunk start); ``default`` if none."""
        return min(self._chunk_ids[0] * CHUNK, default) if self._chunk_ids else default
