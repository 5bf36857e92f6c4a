"""Timed messages (RocketMQ 5's ``TIMER_DELIVER_MS`` / ``TIMER_DELAY_SEC`` / ``TIMER_DELAY_MS``).

- :mod:`~orbitmq.broker.timer.message`: the send-path transform and the delivery transform (pure);
- :mod:`~orbitmq.broker.timer.index`: the in-memory index of pending messages (8 bytes each, no bodies);
- :mod:`~orbitmq.broker.timer.progress`: the persisted progress marker;
- :mod:`~orbitmq.broker.timer.service`: the background service that rebuilds the index and delivers.

Design and recovery are described in ``docs/message-types.md``.
"""

from orbitmq.broker.timer.index import Due, TimerIndex
from orbitmq.broker.timer.message import (
    TIMER_TOPIC,
    TimerCheck,
    TimerVerdict,
    apply_timer,
    has_timer_properties,
    normalize_precision_ms,
    timer_timeup,
)
from orbitmq.broker.timer.progress import TimerCheckpoint, TimerCheckpointManager
from orbitmq.broker.timer.service import TimerMessageService, TimerStats

__all__ = [
    "TIMER_TOPIC",
    "Due",
    "TimerCheck",
    "TimerCheckpoint",
    "TimerCheckpointManager",
    "TimerIndex",
    "TimerMessageService",
    "TimerStats",
    "TimerVerdict",
    "apply_timer",
    "has_timer_properties",
    "normalize_precision_ms",
    "timer_timeup",
]
