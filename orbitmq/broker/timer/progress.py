"""The timer's persisted progress marker, ``config/timerCheckpoint.json``.

With the timer topic's consume queue (rebuilt from the CommitLog by the store's own recovery), this marker
is everything the timer needs to rebuild its index after a restart:

- ``sweepMs``/``sweepPhyOffset`` (the sweep cursor C): parked messages are delivered in the order of
  (delivery time, CommitLog offset); every message at or before C in that order has been delivered,
  except the ones listed in ``late``;
- ``late``: CommitLog offsets of messages at or before C that are still pending (they were parked after
  the sweep had passed their time, or their delivery failed and is being retried);
- ``enqueuePhyOffset`` (E): the CommitLog offset past the last timer record seen when the marker was
  written; messages at or after it are pending whatever their time;
- ``scanQueueOffset``: a timer-queue offset at or below every pending message's: the rebuild reads the
  consume queue from there;
- ``clean``: written by a clean stop, after the last delivery finished. Otherwise deliveries may have
  happened after the marker was written: messages that look pending and were due by the restart are
  checked against the CommitLog's key index before being delivered (see ``service.py``);
- ``checkSinceMs``: how far back that check looks (the marker's time less a minute, or earlier while
  messages from an older crash are still waiting to be checked).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from orbitmq.broker.persist import JsonConfigManager
from orbitmq.core.clock import Clock
from orbitmq.store.fileops import FileOps

__all__ = ["TimerCheckpoint", "TimerCheckpointManager"]


@dataclass(slots=True)
class TimerCheckpoint:
    sweep_ms: int = 0
    sweep_phy: int = -1
    enqueue_phy: int = 0
    scan_queue_offset: int = 0
    late: list[int] = field(default_factory=list)
    clean: bool = False
    timestamp: int = 0
    check_since_ms: int = 0

    @property
    def sweep(self) -> tuple[int, int]:
        return (self.sweep_ms, self.sweep_phy)

    def delivered(self, deliver_ms: int, phy: int, late: set[int]) -> bool:
        """Whether a message seen in the timer queue had been delivered when this marker was written."""
        if phy >= self.enqueue_phy:
            return False
        return (deliver_ms, phy) <= self.sweep and phy not in late


class TimerCheckpointManager(JsonConfigManager):
    name = "timerCheckpoint"

    def __init__(self, root_dir: str, clock: Clock, file_ops: FileOps | None = None) -> None:
        super().__init__(os.path.join(root_dir, "config", "timerCheckpoint.json"), clock, file_ops)
        self.checkpoint = TimerCheckpoint()

    def update(self, checkpoint: TimerCheckpoint) -> None:
        with self._lock:
            self.checkpoint = checkpoint
            self._mark_changed()

    def encode_obj(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "sweepMs": cp.sweep_ms,
            "sweepPhyOffset": cp.sweep_phy,
            "enqueuePhyOffset": cp.enqueue_phy,
            "scanQueueOffset": cp.scan_queue_offset,
            "late": list(cp.late),
            "clean": cp.clean,
            "timestamp": cp.timestamp,
            "checkSinceMs": cp.check_since_ms,
        }

    def decode_obj(self, obj: dict[str, Any]) -> None:
        def num(key: str, default: int) -> int:
            value = obj.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key} is not an integer: {value!r}")
            return value

        late = obj.get("late", [])
        if not isinstance(late, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in late
        ):
            raise ValueError(f"late must be a list of CommitLog offsets: {late!r}")
        self.checkpoint = TimerCheckpoint(
            sweep_ms=num("sweepMs", 0),
            sweep_phy=num("sweepPhyOffset", -1),
            enqueue_phy=num("enqueuePhyOffset", 0),
            scan_queue_offset=num("scanQueueOffset", 0),
            late=list(late),
            clean=obj.get("clean") is True,
            timestamp=num("timestamp", 0),
            check_since_ms=num("checkSinceMs", 0),
        )
