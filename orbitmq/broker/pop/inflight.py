"""The ordered offset commit of non-FIFO pops (upstream's ``commitOffsets`` deques, pop-and-storage §1.9).

Per (topic, group, queue) the pops in flight form a queue in pop order. Each entry carries the
``nextBeginOffset`` of its pop and becomes *done* when its checkpoint is stored (from then on the revive
log owns the redelivery of its unacked messages), when every message was acked before the checkpoint had
to be written (merge buffer), or at once for an offset-only entry (a read that found only filtered-out
messages). The group's committed offset moves only from the head: to the ``nextBeginOffset`` of each done
entry, stopping at the first that is not done. So the committed offset never passes a message whose
checkpoint might still be lost; a crash costs duplicates, never messages.

The next pop of a queue reads from ``max(committed, newest nextBeginOffset in flight)``.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field

from orbitmq.broker.offsets import ConsumerOffsetManager

__all__ = ["PopEntry", "PopOffsets", "QueueKey"]

log = logging.getLogger("orbitmq.broker.pop")

#: (topic, group, queue id)
QueueKey = tuple[str, str, int]


@dataclass(eq=False, slots=True)
class PopEntry:
    key: QueueKey
    next_begin: int
    done: bool = False


@dataclass(slots=True)
class _QueuePops:
    entries: collections.deque[PopEntry] = field(default_factory=collections.deque)
    newest: int = -1  # nextBeginOffset of the newest entry ever added (kept after the deque drains)


class PopOffsets:
    """In-flight pops of every queue, and the commits they allow. All calls run on the event loop."""

    def __init__(self, offsets: ConsumerOffsetManager) -> None:
        self.offsets = offsets
        self._queues: dict[QueueKey, _QueuePops] = {}
        #: Commits made (a metrics exporter reads it).
        self.commits = 0

    def pop_offset(self, key: QueueKey, committed: int) -> int:
        """Where the next pop of ``key`` reads: past the committed offset and every pop in flight."""
        q = self._queues.get(key)
        if q is None or not q.entries:
            return committed
        return max(committed, q.newest)

    def in_flight(self, key: QueueKey) -> int:
        q = self._queues.get(key)
        return len(q.entries) if q else 0

    def begin(self, key: QueueKey, next_begin: int) -> PopEntry:
        """A pop read up to ``next_begin``; it is done once :meth:`complete` is called for it."""
        q = self._queues.setdefault(key, _QueuePops())
        entry = PopEntry(key, next_begin)
        q.entries.append(entry)
        q.newest = max(q.newest, next_begin)
        return entry

    def mock(self, key: QueueKey, next_begin: int) -> None:
        """An offset-only entry: the offset may advance to ``next_begin``, behind every earlier pop."""
        self.complete(self.begin(key, next_begin))

    def complete(self, entry: PopEntry) -> None:
        entry.done = True
        self._drain(entry.key)

    def forget(self, key: QueueKey) -> None:
        """Drop what is in flight on ``key`` without committing (a server-side offset reset took over)."""
        self._queues.pop(key, None)

    def reset(self, key: QueueKey, offset: int) -> None:
        """The stored offset was invalid (queue truncated or recreated): forget what is in flight and
        commit ``offset`` directly, as upstream does for OFFSET_TOO_SMALL / OVERFLOW_BADLY."""
        self._queues.pop(key, None)
        topic, group, queue_id = key
        self.offsets.commit_offset(group, topic, queue_id, offset, "pop")

    def _drain(self, key: QueueKey) -> None:
        q = self._queues.get(key)
        if q is None:
            return
        target = -1
        while q.entries and q.entries[0].done:
            target = max(target, q.entries.popleft().next_begin)
        if target >= 0:
            topic, group, queue_id = key
            current = self.offsets.query_offset(group, topic, queue_id)
            if current is None or target > current:
                self.offsets.commit_offset(group, topic, queue_id, target, "pop")
                self.commits += 1
        if not q.entries:
            del self._queues[key]
