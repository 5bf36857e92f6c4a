"""FIFO (orderly) pop: the per-queue lock table of upstream's ``ConsumerOrderInfoManager`` (RIP-51,
pop-and-storage §1.14), persisted as ``config/consumerOrderInfo.json``.

For each (topic, group, queue) the last FIFO batch popped: its offsets, pop time and invisible time, the
acked offsets, per-offset reconsume counts, per-offset visibility overrides (change of invisible time) and
the attempt id of the pop. The queue is *blocked* for the group while some unacked offset of the batch is
still invisible, except for a pop that repeats the batch's attempt id (a client retrying a receive whose
answer it lost, upstream rocketmq-clients #708). When the block ends, the next pop reads from the
committed offset again, i.e. redelivers the unacked messages in order, their counts one higher.

FIFO pops write no checkpoint and nothing is revived: the group's committed offset is the first unacked
offset of the batch, moved by acks. The functions here are pure over the table; the popper and the acker
call them and do the I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from orbitmq.broker.persist import JsonConfigManager
from orbitmq.core.clock import Clock
from orbitmq.store.fileops import FileOps

__all__ = ["ACK_ILLEGAL", "ACK_STALE", "OrderInfo", "OrderInfoManager"]

#: :meth:`OrderInfoManager.commit_and_next` results that are not offsets.
ACK_STALE = -2  # the handle's pop time is not the batch's: an old handle, ignored
ACK_ILLEGAL = -1  # the offset is not in the batch

QueueKey = tuple[str, str, int]  # (topic, group, queue id)


@dataclass(slots=True)
class OrderInfo:
    pop_time: int  # popTime
    invisible_time: int  # i
    offsets: list[int]  # o
    attempt_id: str | None = None  # a
    acked: set[int] = field(default_factory=set)  # cm (as offsets)
    counts: dict[int, int] = field(default_factory=dict)  # oc: reconsume count per offset
    next_visible: dict[int, int] = field(default_factory=dict)  # ot: per-offset override (ms)
    last_consume_time: int = 0  # l

    def visible_at(self, offset: int) -> int:
        return self.next_visible.get(offset, self.pop_time + self.invisible_time)

    def unacked(self) -> list[int]:
        return [o for o in self.offsets if o not in self.acked]

    def blocked_until(self) -> int | None:
        """When the queue unblocks (None: every offset is acked)."""
        return max((self.visible_at(o) for o in self.unacked()), default=None)

    def to_json(self) -> dict[str, Any]:
        first = self.offsets[0] if self.offsets else 0
        diffs = [first] + [o - first for o in self.offsets[1:]]
        return {
            "popTime": self.pop_time, "i": self.invisible_time, "o": diffs, "a": self.attempt_id,
            "cm": sorted(self.acked), "oc": {str(k): v for k, v in self.counts.items()},
            "ot": {str(k): v for k, v in self.next_visible.items()}, "l": self.last_consume_time,
        }  # fmt: skip

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> OrderInfo:
        diffs = [int(x) for x in obj.get("o") or []]
        offsets = [diffs[0], *(diffs[0] + d for d in diffs[1:])] if diffs else []
        return cls(
            pop_time=int(obj.get("popTime", 0)),
            invisible_time=int(obj.get("i", 0)),
            offsets=offsets,
            attempt_id=obj.get("a") if isinstance(obj.get("a"), str) else None,
            acked={int(x) for x in obj.get("cm") or []},
            counts={int(k): int(v) for k, v in (obj.get("oc") or {}).items()},
            next_visible={int(k): int(v) for k, v in (obj.get("ot") or {}).items()},
            last_consume_time=int(obj.get("l", 0)),
        )


class OrderInfoManager(JsonConfigManager):
    """The FIFO lock table. Mutate on the event loop; persist from anywhere (the lock is held)."""

    name = "consumerOrderInfo"

    def __init__(self, root_dir: str, clock: Clock, file_ops: FileOps | None = None) -> None:
        super().__init__(os.path.join(root_dir, "config", "consumerOrderInfo.json"), clock, file_ops)
        self._table: dict[QueueKey, OrderInfo] = {}

    def get(self, key: QueueKey) -> OrderInfo | None:
        return self._table.get(key)

    def check_block(self, key: QueueKey, attempt_id: str | None, now: int) -> bool:
        """Is the queue blocked for a pop with ``attempt_id``? Never for the batch's own attempt."""
        info = self._table.get(key)
        if info is None:
            return False
        if attempt_id and attempt_id == info.attempt_id:
            return False
        return any(info.visible_at(o) > now for o in info.unacked())

    def update(
        self, key: QueueKey, attempt_id: str | None, pop_time: int, invisible_time: int, offsets: list[int]
    ) -> dict[int, int]:
        """Record a FIFO batch; its reconsume count per offset. An offset of the previous batch counts one
        more delivery, unless this pop repeats the previous attempt (the client never saw that answer)."""
        prev = self._table.get(key)
        counts: dict[int, int] = {}
        for offset in offsets:
            if prev is None or offset not in prev.offsets:
                counts[offset] = 0
            elif attempt_id and attempt_id == prev.attempt_id:
                counts[offset] = prev.counts.get(offset, 0)
            else:
                counts[offset] = prev.counts.get(offset, 0) + 1
        with self._lock:
            self._table[key] = OrderInfo(
                pop_time,
                invisible_time,
                list(offsets),
                attempt_id,
                counts=dict(counts),
                last_consume_time=pop_time,
            )
            self._mark_changed()
        return counts

    def commit_and_next(self, key: QueueKey, offset: int, pop_time: int) -> int:
        """Ack ``offset`` of the batch popped at ``pop_time``: the next offset to commit (the first
        unacked one, or past the batch), :data:`ACK_STALE` or :data:`ACK_ILLEGAL`."""
        info = self._table.get(key)
        if info is None or info.pop_time != pop_time:
            return ACK_STALE
        if offset not in info.offsets:
            return ACK_ILLEGAL
        with self._lock:
            info.acked.add(offset)
            self._mark_changed()
        unacked = info.unacked()
        return unacked[0] if unacked else info.offsets[-1] + 1

    def change_visibility(self, key: QueueKey, offset: int, pop_time: int, next_visible: int) -> bool:
        """Change of invisible time of one message of the batch; False for a stale handle."""
        info = self._table.get(key)
        if info is None or info.pop_time != pop_time or offset not in info.offsets:
            return False
        with self._lock:
            info.next_visible[offset] = next_visible
            self._mark_changed()
        return True

    def clear(self, key: QueueKey) -> None:
        with self._lock:
            if self._table.pop(key, None) is not None:
                self._mark_changed()

    # -- persistence -------------------------------------------------------------------------------------
    def encode_obj(self) -> dict[str, Any]:
        table: dict[str, dict[str, Any]] = {}
        for (topic, group, qid), info in sorted(self._table.items()):
            table.setdefault(f"{topic}@{group}", {})[str(qid)] = info.to_json()
        return {"table": table}

    def decode_obj(self, obj: dict[str, Any]) -> None:
        raw = obj.get("table") or {}
        if not isinstance(raw, dict):
            raise ValueError("table must be an object")
        table: dict[QueueKey, OrderInfo] = {}
        for tg, queues in raw.items():
            topic, sep, group = str(tg).partition("@")
            if not sep or not isinstance(queues, dict):
                continue
            for qid, info in queues.items():
                if isinstance(info, dict):
                    table[(topic, group, int(qid))] = OrderInfo.from_json(info)
        self._table = table
