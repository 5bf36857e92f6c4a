"""Delay-level delivery (RocketMQ ``ScheduleMessageService``).

A message whose ``DELAY`` property names a level (1..N of ``messageDelayLevel``) is not stored in its topic:
:func:`apply_delay_level` redirects it to ``SCHEDULE_TOPIC_XXXX`` queue ``level - 1`` with its real topic and
queue in ``REAL_TOPIC``/``REAL_QID`` and the delivery time as the consume-queue tag code. Retries from
CONSUMER_SEND_MSG_BACK take the same path. Every queue of that topic holds one level, so its messages
become due in queue order: :class:`ScheduleMessageService` reads each level queue from its progress offset,
re-stores every due message in its real topic (:func:`message_timeup`) and advances the offset; the first
message that is not due yet tells it how long to sleep. A new delayed message wakes it.

Progress is ``config/delayOffset.json`` (``{"offsetTable": {"<level>": <next offset>}}``, RocketMQ's file),
kept by :class:`DelayOffsetManager`. The offset advances only after the re-store succeeded, and the service
stops before the file is written for the last time, so a clean restart delivers every due message exactly
once; after a crash a message may be delivered twice (at least once), never lost.

The delivery time is computed from the record's own store timestamp (not the tag code), so consume queues
rebuilt by recovery cannot shift it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from orbitmq.broker.delay_levels import clamp_level, queue_id_for_level
from orbitmq.broker.longpoll import sleep_unless_woken
from orbitmq.broker.persist import DataVersion, JsonConfigManager
from orbitmq.broker.topics import SCHEDULE_TOPIC
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ProtocolError
from orbitmq.core.service import Service
from orbitmq.protocol.record import TRANSACTION_MASK, MessageRecord, Prop, SysFlag, decode_record
from orbitmq.store.api import GetStatus, MessageStore, MessageToStore
from orbitmq.store.fileops import FileOps

__all__ = [
    "SCHEDULE_TOPIC",
    "DelayOffsetManager",
    "ScheduleMessageService",
    "apply_delay_level",
    "delay_level_of",
    "message_timeup",
]

log = logging.getLogger("orbitmq.broker.schedule")

#: Messages read from one level queue per store read.
_BATCH = 32
#: After a failed re-store, wait this long before trying the same message again.
_RETRY_AFTER_S = 1.0


def delay_level_of(properties: dict[str, str]) -> int:
    """The ``DELAY`` property as a level; 0 when absent or not a number (no delay)."""
    text = properties.get(Prop.DELAY)
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        return 0


def apply_delay_level(msg: MessageToStore, levels_ms: tuple[int, ...], now_ms: int) -> MessageToStore:
    """Redirect ``msg`` to ``SCHEDULE_TOPIC_XXXX`` when it asks for a delay level (in place; returns it).

    A level above the table means the last level; prepared or rolled-back transactional messages and
    messages without a positive level are left alone (as the CommitLog does upstream).
    """
    level = delay_level_of(msg.properties)
    if level <= 0 or msg.sys_flag & TRANSACTION_MASK not in (0, int(SysFlag.TRANSACTION_COMMIT)):
        return msg
    clamped = clamp_level(level, len(levels_ms))
    if clamped != level:
        msg.properties[Prop.DELAY] = str(clamped)
    msg.properties[Prop.REAL_TOPIC] = msg.topic
    msg.properties[Prop.REAL_QID] = str(msg.queue_id)
    msg.topic = SCHEDULE_TOPIC
    msg.queue_id = queue_id_for_level(clamped)
    msg.tags_code = now_ms + levels_ms[clamped - 1]  # RocketMQ's tag code of a delayed message: due time
    return msg


def message_timeup(rec: MessageRecord) -> MessageToStore | None:
    """The message to store in the real topic for a due schedule record; None when it names no real queue."""
    props = dict(rec.properties)
    real_topic = props.get(Prop.REAL_TOPIC)
    try:
        real_qid = int(props.get(Prop.REAL_QID, ""))
    except ValueError:
        return None
    if not real_topic or real_qid < 0:
        return None
    props.pop(Prop.DELAY, None)
    props[Prop.WAIT] = "false"
    return MessageToStore.copy_of(rec, topic=real_topic, queue_id=real_qid, properties=props)


class DelayOffsetManager(JsonConfigManager):
    """Delivery progress per delay level, persisted as ``<root>/config/delayOffset.json``."""

    name = "delayOffset"

    def __init__(self, root_dir: str, clock: Clock, file_ops: FileOps | None = None) -> None:
        super().__init__(os.path.join(root_dir, "config", "delayOffset.json"), clock, file_ops)
        self.data_version = DataVersion(timestamp=clock.now_ms())
        self._table: dict[int, int] = {}

    def offset(self, level: int) -> int:
        return self._table.get(level, 0)

    def update(self, level: int, offset: int) -> None:
        with self._lock:
            if self._table.get(level) == offset:
                return
            self._table[level] = offset
            self._mark_changed()

    def table(self) -> dict[int, int]:
        with self._lock:
            return dict(self._table)

    def encode_obj(self) -> dict[str, Any]:
        return {
            "dataVersion": self.data_version.to_json(),
            "offsetTable": {str(level): off for level, off in sorted(self._table.items())},
        }

    def decode_obj(self, obj: dict[str, Any]) -> None:
        raw = obj.get("offsetTable") or {}
        if not isinstance(raw, dict):
            raise ValueError("offsetTable must be an object")
        table: dict[int, int] = {}
        for level, off in raw.items():
            if isinstance(off, bool) or not isinstance(off, int):
                raise ValueError(f"delay offset of level {level} is not an integer: {off!r}")
            table[int(level)] = off
        self._table = table
        self.data_version = DataVersion.from_json(obj.get("dataVersion"))


class ScheduleMessageService(Service):
    """Moves due messages from ``SCHEDULE_TOPIC_XXXX`` to their real topics, level by level."""

    def __init__(
        self,
        store: MessageStore,
        offsets: DelayOffsetManager,
        levels_ms: tuple[int, ...],
        clock: Clock,
        *,
        check_interval_s: float = 1.0,
    ) -> None:
        super().__init__("ScheduleMessageService")
        self.store = store
        self.offsets = offsets
        self.levels_ms = levels_ms
        self.clock = clock
        self.check_interval_s = check_interval_s
        #: Messages re-stored in their real topic since start (metrics, tests).
        self.delivered = 0

    def on_message_arriving(self, topic: str) -> None:
        """Dispatch listener hook: a new delayed message may be due sooner than the current sleep."""
        if topic == SCHEDULE_TOPIC and self.running:
            self.wakeup()

    async def run(self) -> None:
        while not self.stopping:
            next_due: int | None = None
            for level in range(1, len(self.levels_ms) + 1):
                if self.stopping:
                    return
                try:
                    due = await self.deliver_level(level)
                except Exception:
                    log.exception("delivering delay level %d failed; retrying", level)
                    due = self.clock.now_ms() + int(_RETRY_AFTER_S * 1000)
                if due is not None:
                    next_due = due if next_due is None else min(next_due, due)
            delay = self.check_interval_s
            if next_due is not None:
                delay = min(delay, max(0.0, (next_due - self.clock.now_ms()) / 1000))
            await self._sleep(delay)

    async def deliver_level(self, level: int) -> int | None:
        """Deliver every due message of ``level``; the due time (ms) of the first one still waiting, or
        None when the level queue is drained."""
        qid = queue_id_for_level(level)
        delay_ms = self.levels_ms[level - 1]
        offset = max(self.offsets.offset(level), self.store.min_offset_in_queue(SCHEDULE_TOPIC, qid))
        while not self.stopping:
            res = self.store.get_messages(SCHEDULE_TOPIC, qid, offset, _BATCH)
            if res.status in (GetStatus.OFFSET_TOO_SMALL, GetStatus.OFFSET_OVERFLOW_BADLY):
                log.warning("delay level %d: offset %d outside the queue, moving to %d", level, offset,
                            res.next_begin_offset)  # fmt: skip
                offset = res.next_begin_offset
                self.offsets.update(level, offset)
                continue
            if res.status is not GetStatus.FOUND:
                if res.next_begin_offset > offset:  # skipped unreadable records
                    offset = res.next_begin_offset
                    self.offsets.update(level, offset)
                    continue
                return None
            for view, qo in zip(res.buffers, res.queue_offsets, strict=True):
                due = await self._deliver_one(view, qo, level, delay_ms)
                if due is not None:
                    return due
                offset = qo + 1
                self.offsets.update(level, offset)
            offset = max(offset, res.next_begin_offset)
            self.offsets.update(level, offset)
        return None

    async def _deliver_one(self, view: memoryview, qo: int, level: int, delay_ms: int) -> int | None:
        """Re-store one schedule record if due; its due time (or a retry time) when it must wait."""
        try:
            rec = decode_record(view)
        except ProtocolError as exc:
            log.error("delay level %d: unreadable record at offset %d skipped: %s", level, qo, exc)
            return None
        due = rec.store_timestamp + delay_ms
        if self.clock.now_ms() < due:
            return due
        real = message_timeup(rec)
        if real is None:
            log.error("delay level %d: record at offset %d has no REAL_TOPIC/REAL_QID; dropped", level, qo)
            return None
        result = await self.store.put_message(real)
        if not result.ok:
            log.warning("delay level %d: re-storing offset %d in %s failed (%s %s); will retry",
                        level, qo, real.topic, result.status.value, result.remark)  # fmt: skip
            return self.clock.now_ms() + int(_RETRY_AFTER_S * 1000)
        self.delivered += 1
        return None

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless_woken(self.clock, self._wakeup, seconds)
