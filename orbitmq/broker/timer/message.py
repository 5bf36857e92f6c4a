"""Timed messages on the send path and at delivery: pure functions over a message's properties.

A message asks for an arbitrary delivery time with one of RocketMQ 5's properties (upstream ``HookUtils``):
``TIMER_DELAY_SEC`` (seconds from now), ``TIMER_DELAY_MS`` (milliseconds from now) or ``TIMER_DELIVER_MS``
(absolute epoch ms), looked at in that order. A delay level (``DELAY`` > 0) wins: the timer properties are
then removed. A time in the future is parked in ``rmq_sys_wheel_timer`` queue 0 with ``TIMER_OUT_MS`` (the
delivery time), ``REAL_TOPIC`` and ``REAL_QID``; a time already passed is stored straight in its topic.
More than ``timerMaxDelaySec`` ahead, or a value that is not a number, is refused (upstream's
``WHEEL_TIMER_MSG_ILLEGAL`` → MESSAGE_ILLEGAL), and so is a deletion marker (``TIMER_DEL_UNIQKEY``): OrbitMQ
does not implement recall.

Unlike upstream, ``TIMER_OUT_MS`` is the exact requested time, not rounded down to ``timerPrecisionMs``:
upstream may deliver up to one precision step early, OrbitMQ never delivers before the requested time.

At delivery (:func:`timer_timeup`) the message goes back to its real topic and queue with its properties,
minus ``REAL_TOPIC``/``REAL_QID``, plus ``TIMER_ENQUEUE_MS`` (when it was parked) and ``TIMER_DEQUEUE_MS``
(when it was delivered), as upstream's ``TimerMessageStore.convert`` does. ``TIMER_OUT_MS`` stays, so a
delivered copy is never taken for a new timed message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from orbitmq.broker.schedule import delay_level_of
from orbitmq.protocol.record import TRANSACTION_MASK, MessageRecord, Prop, SysFlag
from orbitmq.store.api import MessageToStore

__all__ = [
    "TIMER_DELAY_PROPERTIES",
    "TIMER_DEL_UNIQKEY",
    "TIMER_DEQUEUE_MS",
    "TIMER_ENQUEUE_MS",
    "TIMER_TOPIC",
    "TimerCheck",
    "TimerVerdict",
    "apply_timer",
    "deliver_ms_of",
    "has_timer_properties",
    "normalize_precision_ms",
    "timer_timeup",
]

#: Where parked timed messages live (upstream ``TimerMessageStore.TIMER_TOPIC``), one queue.
TIMER_TOPIC: Final = "rmq_sys_wheel_timer"
TIMER_ENQUEUE_MS: Final = "TIMER_ENQUEUE_MS"
TIMER_DEQUEUE_MS: Final = "TIMER_DEQUEUE_MS"
TIMER_DEL_UNIQKEY: Final = "TIMER_DEL_UNIQKEY"
#: The properties a producer sets to ask for a delivery time, in the order upstream reads them.
TIMER_DELAY_PROPERTIES: Final = (Prop.TIMER_DELAY_SEC, Prop.TIMER_DELAY_MS, Prop.TIMER_DELIVER_MS)
#: ``timerPrecisionMs`` is rounded down to one of these (upstream ``MessageStoreConfig`` setter).
_PRECISIONS: Final = (100, 200, 500, 1000)


def normalize_precision_ms(value: int) -> int:
    """Upstream's rule: the largest candidate (100, 200, 500, 1000) not above ``value`` (100 at least)."""
    chosen = _PRECISIONS[0]
    for candidate in _PRECISIONS:
        if value >= candidate:
            chosen = candidate
    return chosen


class TimerVerdict(enum.Enum):
    NOT_TIMED = "not timed"  # no timer property (or a delay level / a non-committed transaction state)
    DISABLED = "disabled"  # timed, but timerWheelEnable=false: refuse with SYSTEM_ERROR (upstream)
    DUE = "due"  # timed, but its time has come: store it in its topic now
    PARKED = "parked"  # redirected to rmq_sys_wheel_timer
    ILLEGAL = "illegal"  # refuse with MESSAGE_ILLEGAL


@dataclass(frozen=True, slots=True)
class TimerCheck:
    verdict: TimerVerdict
    deliver_ms: int = 0
    remark: str = ""


def has_timer_properties(props: dict[str, str]) -> bool:
    return any(name in props for name in TIMER_DELAY_PROPERTIES)


def deliver_ms_of(props: dict[str, str], now_ms: int) -> int | None:
    """The requested delivery time in epoch ms; None when a present property is not an integer."""
    try:
        if Prop.TIMER_DELAY_SEC in props:
            return now_ms + int(props[Prop.TIMER_DELAY_SEC]) * 1000
        if Prop.TIMER_DELAY_MS in props:
            return now_ms + int(props[Prop.TIMER_DELAY_MS])
        return int(props[Prop.TIMER_DELIVER_MS])
    except (KeyError, ValueError):
        return None


def _illegal_remark(max_delay_sec: int) -> str:
    # Upstream's remark for WHEEL_TIMER_MSG_ILLEGAL, so client logs read the same.
    return (
        f"timer message illegal, the delay time should not be bigger than the max delay "
        f"{max_delay_sec * 1000}ms; or if set del msg, the delay time should be bigger than the current time"
    )


def apply_timer(msg: MessageToStore, now_ms: int, max_delay_sec: int, *, enabled: bool = True) -> TimerCheck:
    """Park ``msg`` in the timer topic when it asks for a future delivery time (in place).

    Upstream's ``HookUtils.handleScheduleMessage`` order: only non-transactional or committed messages,
    never one already in the timer topic or already carrying ``TIMER_OUT_MS`` (a delivered copy); a delay
    level wins over the timer properties, which are then removed.
    """
    props = msg.properties
    if msg.sys_flag & TRANSACTION_MASK not in (0, int(SysFlag.TRANSACTION_COMMIT)):
        return TimerCheck(TimerVerdict.NOT_TIMED)
    if msg.topic == TIMER_TOPIC or Prop.TIMER_OUT_MS in props or not has_timer_properties(props):
        return TimerCheck(TimerVerdict.NOT_TIMED)
    if delay_level_of(props) > 0:
        for name in TIMER_DELAY_PROPERTIES:
            props.pop(name, None)
        return TimerCheck(TimerVerdict.NOT_TIMED)
    if not enabled:
        return TimerCheck(
            TimerVerdict.DISABLED, remark="accurate timer message is not enabled, timerWheelEnable is false"
        )
    if TIMER_DEL_UNIQKEY in props:
        return TimerCheck(
            TimerVerdict.ILLEGAL, remark="timer message deletion (TIMER_DEL_UNIQKEY) is not supported"
        )
    deliver_ms = deliver_ms_of(props, now_ms)
    if deliver_ms is None:
        return TimerCheck(TimerVerdict.ILLEGAL, remark=_illegal_remark(max_delay_sec))
    if deliver_ms <= now_ms:
        return TimerCheck(TimerVerdict.DUE, deliver_ms)
    if deliver_ms - now_ms > max_delay_sec * 1000:
        return TimerCheck(TimerVerdict.ILLEGAL, deliver_ms, _illegal_remark(max_delay_sec))
    props[Prop.TIMER_OUT_MS] = str(deliver_ms)
    props[Prop.REAL_TOPIC] = msg.topic
    props[Prop.REAL_QID] = str(msg.queue_id)
    msg.topic = TIMER_TOPIC
    msg.queue_id = 0
    msg.tags_code = deliver_ms  # like a delay level's tag code: the due time (outside the int32 hash range)
    return TimerCheck(TimerVerdict.PARKED, deliver_ms)


def timer_timeup(rec: MessageRecord, now_ms: int) -> MessageToStore | None:
    """The message to store in its real topic for a parked record; None when it names no real queue."""
    props = dict(rec.properties)
    real_topic = props.pop(Prop.REAL_TOPIC, None)
    try:
        real_qid = int(props.pop(Prop.REAL_QID, ""))
    except ValueError:
        return None
    if not real_topic or real_qid < 0:
        return None
    props[TIMER_ENQUEUE_MS] = str(rec.store_timestamp)
    props[TIMER_DEQUEUE_MS] = str(now_ms)
    props[Prop.WAIT] = "false"
    return MessageToStore.copy_of(rec, topic=real_topic, queue_id=real_qid, properties=props)
