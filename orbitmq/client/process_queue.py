"""What a consumer holds for one queue it owns (RocketMQ's ``ProcessQueue``): messages pulled and not yet
finished, in offset order, and where the next pull starts. Pure bookkeeping, no I/O.

The committable offset never passes an unfinished message: it is the smallest offset still held, or, when
nothing is held, the offset after the last pulled message (filtered-out messages count as finished).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from orbitmq.client.model import MessageExt, MessageQueue

__all__ = ["ProcessQueue"]


@dataclass(eq=False)
class ProcessQueue:
    mq: MessageQueue
    #: Where the next pull starts.
    next_offset: int
    #: Offset after the last message pulled; what is committable when nothing is held.
    pulled_upto: int = 0
    #: Pulled and not yet finished, by queue offset (insertion order = offset order: pulls are sequential).
    msgs: dict[int, MessageExt] = field(default_factory=dict)
    cached_bytes: int = 0
    dropped: bool = False
    #: Orderly, clustering: the broker lock is ours (renewed every 20 s; see ``lock_expired``).
    locked: bool = False
    last_lock_s: float = 0.0
    last_pull_s: float = field(default_factory=time.monotonic)
    #: Set whenever messages are added or the queue is dropped (the orderly consume loop waits on it).
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Held by the orderly consume loop while a message is in the listener; a drop waits for it.
    consume_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pull_task: asyncio.Task[None] | None = None
    consume_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.pulled_upto = max(self.pulled_upto, self.next_offset)

    # -- filling --------------------------------------------------------------------------------------
    def put(self, msgs: list[MessageExt], next_begin_offset: int) -> list[MessageExt]:
        """Add pulled messages (those already held are ignored); returns the ones added."""
        added = []
        for m in msgs:
            if m.queue_offset in self.msgs or m.queue_offset < self.pulled_upto:
                continue
            self.msgs[m.queue_offset] = m
            self.cached_bytes += len(m.body)
            added.append(m)
        self.pulled_upto = max(self.pulled_upto, next_begin_offset)
        self.next_offset = next_begin_offset
        if added:
            self.changed.set()
        return added

    def skip_to(self, next_begin_offset: int) -> None:
        """A pull found nothing to hand out (no new message, filtered, offset moved) up to this offset."""
        self.next_offset = next_begin_offset
        self.pulled_upto = next_begin_offset if not self.msgs else max(self.pulled_upto, next_begin_offset)

    # -- finishing ------------------------------------------------------------------------------------
    def remove(self, offset: int) -> int:
        """A message is finished; returns the committable offset afterwards."""
        m = self.msgs.pop(offset, None)
        if m is not None:
            self.cached_bytes -= len(m.body)
        return self.commit_offset()

    def first(self) -> MessageExt | None:
        """The held message with the smallest offset (orderly consumption takes them in this order)."""
        return self.msgs[next(iter(self.msgs))] if self.msgs else None

    def take(self, limit: int) -> list[MessageExt]:
        """Remove and return up to ``limit`` held messages in offset order (lite pull's poll)."""
        keys = list(self.msgs)[:limit]
        out = [self.msgs.pop(k) for k in keys]
        self.cached_bytes -= sum(len(m.body) for m in out)
        return out

    def clear(self, next_offset: int) -> None:
        """Forget everything held and start pulling at ``next_offset`` (seek)."""
        self.msgs.clear()
        self.cached_bytes = 0
        self.next_offset = self.pulled_upto = next_offset

    def commit_offset(self) -> int:
        return next(iter(self.msgs)) if self.msgs else self.pulled_upto

    # -- state ----------------------------------------------------------------------------------------
    @property
    def cached_count(self) -> int:
        return len(self.msgs)

    def span(self) -> int:
        """Offsets between the oldest and the newest held message (concurrent flow control)."""
        if not self.msgs:
            return 0
        return next(reversed(self.msgs)) - next(iter(self.msgs))

    def lock_expired(self, now_s: float, max_live_s: float) -> bool:
        return now_s - self.last_lock_s > max_live_s

    def pull_expired(self, now_s: float, max_idle_s: float) -> bool:
        return now_s - self.last_pull_s > max_idle_s

    def drop(self) -> None:
        self.dropped = True
        self.changed.set()
