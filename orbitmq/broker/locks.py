"""Orderly-consumer queue locks (RocketMQ ``RebalanceLockManager``, LOCK_BATCH_MQ / UNLOCK_BATCH_MQ) and the
``MessageQueue`` key they and the assignment / reset handlers share.

Upstream fact mirrored (pop-and-storage §4): one client per (group, queue), expiring 60 s after the last
renewal (``rocketmq.broker.rebalance.lockMaxLiveTime``). Time comes in as ``now_ms``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orbitmq.core.errors import ProtocolError

__all__ = ["MessageQueue", "RebalanceLockManager"]

# The logger name predates the split out of groups.py; operators' log filters rely on it.
log = logging.getLogger("orbitmq.broker.groups")


# -- orderly-consumer queue locks ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class MessageQueue:
    topic: str  # topic
    broker_name: str  # brokerName
    queue_id: int  # queueId

    def to_json(self) -> dict[str, Any]:
        return {"brokerName": self.broker_name, "queueId": self.queue_id, "topic": self.topic}

    @classmethod
    def from_json(cls, obj: object) -> MessageQueue:
        if not isinstance(obj, dict):
            raise ProtocolError(f"message queue must be an object, got {obj!r}")
        topic, broker, qid = obj.get("topic"), obj.get("brokerName"), obj.get("queueId")
        if (
            not isinstance(topic, str)
            or not isinstance(broker, str)
            or isinstance(qid, bool)
            or not isinstance(qid, int)
        ):
            raise ProtocolError(f"bad message queue {obj!r}")
        return cls(topic, broker, qid)


class RebalanceLockManager:
    """LOCK_BATCH_MQ / UNLOCK_BATCH_MQ: a queue of a group is locked by one client until it stops renewing."""

    def __init__(self, lock_max_live_time_ms: int = 60_000) -> None:
        self.lock_max_live_time_ms = lock_max_live_time_ms  # rocketmq.broker.rebalance.lockMaxLiveTime
        self._locks: dict[str, dict[MessageQueue, tuple[str, int]]] = {}

    def _expired(self, last_update_ms: int, now_ms: int) -> bool:
        return now_ms - last_update_ms > self.lock_max_live_time_ms

    def try_lock_batch(
        self, group: str, mqs: Iterable[MessageQueue], client_id: str, now_ms: int
    ) -> set[MessageQueue]:
        """Lock (or renew) each queue for ``client_id``; the queues it now holds. A queue held by another
        live client is left out; an expired lock is taken over."""
        table = self._locks.setdefault(group, {})
        locked = set()
        for mq in mqs:
            holder = table.get(mq)
            if holder is not None and holder[0] != client_id and not self._expired(holder[1], now_ms):
                log.warning("group %s: %s is locked by %s, not %s", group, mq, holder[0], client_id)
                continue
            if holder is not None and holder[0] != client_id:
                log.warning("group %s: %s taken over from expired %s by %s", group, mq, holder[0], client_id)
            table[mq] = (client_id, now_ms)
            locked.add(mq)
        return locked

    def unlock_batch(self, group: str, mqs: Iterable[MessageQueue], client_id: str) -> set[MessageQueue]:
        """Release the queues ``client_id`` holds; queues held by others are left alone. Returns released."""
        table = self._locks.get(group, {})
        released = set()
        for mq in mqs:
            holder = table.get(mq)
            if holder is not None and holder[0] == client_id:
                del table[mq]
                released.add(mq)
        if not table:
            self._locks.pop(group, None)
        return released

    def lock_owner(self, group: str, mq: MessageQueue, now_ms: int) -> str | None:
        holder = self._locks.get(group, {}).get(mq)
        return holder[0] if holder is not None and not self._expired(holder[1], now_ms) else None

    def is_locked(self, group: str, mq: MessageQueue, client_id: str, now_ms: int) -> bool:
        return self.lock_owner(group, mq, now_ms) == client_id

    def is_lock_all_expired(self, group: str, now_ms: int) -> bool:
        return all(self._expired(ts, now_ms) for _, ts in self._locks.get(group, {}).values())

    def scan_expired(self, now_ms: int) -> int:
        """Drop expired locks (housekeeping); how many were dropped."""
        dropped = 0
        for group, table in list(self._locks.items()):
            for mq in [mq for mq, (_, ts) in table.items() if self._expired(ts, now_ms)]:
                del table[mq]
                dropped += 1
            if not table:
                del self._locks[group]
        return dropped
