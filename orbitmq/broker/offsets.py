"""Committed consumer offsets (RocketMQ ``ConsumerOffsetManager``), persisted as ``config/consumerOffset.json``.

The table maps ``<topic>@<group>`` → {queueId: next offset to consume}; the file is RocketMQ's schema,
``{"offsetTable": {"t@g": {"0": 5}}, "dataVersion": {...}}`` (a Java broker's file, with fastjson's
unquoted integer keys, loads too). Revive progress and pop retry offsets live in the same table.

Differences from upstream, on purpose:

- A negative commit is ignored (upstream stores it, after which the queue reads as "no offset"): ali-ons
  sends -1 for an in-memory offset of 0, which must never rewind a real offset (remoting-protocol §7.6).
  A lower non-negative commit is stored and logged, as upstream does.
- A commit never creates an entry for a negative value, so "no offset" is always ``None``.

Server-side reset (RIP-48, pop-and-storage S3), :meth:`ConsumerOffsetManager.assign_reset_offset`:

- the target goes into the offset table, creating the ``topic@group`` entry when the group never committed
  there (upstream #9150), so it is persisted, survives a restart and is what the first consumer queries;
- it is also kept as a *pending reset* until a consumer of that queue picks it up
  (:meth:`~ConsumerOffsetManager.query_then_erase_reset_offset`: the next pull answers PULL_OFFSET_MOVED,
  the next pop starts there). While one is pending, commits of that queue are ignored: they come from
  clients that have not seen the reset yet. Unlike upstream the pending table is persisted too (key
  ``resetOffsetTable``, which a Java broker ignores), so a restart does not let a stale client overwrite it.

The hook for other consumption paths (POP): :meth:`ConsumerOffsetManager.add_reset_listener` registers
``listener(group, topic, queue_id, offset)``, called on the event loop after each queue's reset is stored;
a listener drops its in-flight state of that queue (pop: checkpoints, buffered acks, in-flight counters) and
then, under its queue lock, takes the new start with :meth:`~ConsumerOffsetManager.query_then_erase_reset_offset`.
A listener that raises is logged and does not stop the reset or the other listeners.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Final

from orbitmq.broker.persist import DataVersion, JsonConfigManager, PersistService
from orbitmq.core.clock import Clock
from orbitmq.store.fileops import FileOps

__all__ = [
    "TOPIC_GROUP_SEPARATOR",
    "ConsumerOffsetManager",
    "OffsetPersistService",
    "ResetListener",
    "topic_group_key",
]

log = logging.getLogger("orbitmq.broker.offsets")

TOPIC_GROUP_SEPARATOR: Final = "@"

#: ``listener(group, topic, queue_id, offset)``: a queue of the group was reset to ``offset``.
ResetListener = Callable[[str, str, int, int], None]


def topic_group_key(topic: str, group: str) -> str:
    return f"{topic}{TOPIC_GROUP_SEPARATOR}{group}"


def _split_key(key: str) -> tuple[str, str] | None:
    # Upstream splits on "@" and ignores keys that do not give exactly two parts.
    parts = key.split(TOPIC_GROUP_SEPARATOR)
    return (parts[0], parts[1]) if len(parts) == 2 else None


class ConsumerOffsetManager(JsonConfigManager):
    """Committed offsets per (topic, group, queue). Mutate from the event loop; persist from anywhere."""

    name = "consumerOffset"

    def __init__(
        self, root_dir: str, clock: Clock, *, version_step: int = 500, file_ops: FileOps | None = None
    ) -> None:
        super().__init__(os.path.join(root_dir, "config", "consumerOffset.json"), clock, file_ops)
        if version_step <= 0:
            raise ValueError(f"version_step must be positive, got {version_step}")
        self.version_step = version_step  # consumerOffsetUpdateVersionStep
        self.data_version = DataVersion(timestamp=clock.now_ms())
        self._table: dict[str, dict[int, int]] = {}
        #: Last pulled position per queue (in memory only, for consume stats), as upstream's pullOffsetTable.
        self._pull_table: dict[str, dict[int, int]] = {}
        #: Resets not yet picked up by a consumer of the queue (see the module docstring).
        self._reset_table: dict[str, dict[int, int]] = {}
        self._reset_listeners: list[ResetListener] = []
        self._commits = 0

    # -- commits ---------------------------------------------------------------------------------------
    def commit_offset(
        self, group: str, topic: str, queue_id: int, offset: int, client_host: str = ""
    ) -> bool:
        """Store ``offset`` as the group's next offset on the queue; False (nothing stored) when the offset
        or the queue id is negative. The caller checks the queue exists (INVALID_PARAMETER)."""
        if offset < 0:
            log.debug(
                "ignored negative commit %d for %s@%s q%d from %s",
                offset,
                topic,
                group,
                queue_id,
                client_host,
            )
            return False
        if queue_id < 0:
            log.warning("ignored commit for queue %d of %s@%s from %s", queue_id, topic, group, client_host)
            return False
        key = topic_group_key(topic, group)
        if queue_id in self._reset_table.get(key, ()):
            log.info(
                "ignored commit %d for %s q%d from %s: a reset of the queue is pending",
                offset,
                key,
                queue_id,
                client_host,
            )
            return False
        with self._lock:
            queues = self._table.setdefault(key, {})
            old = queues.get(queue_id)
            queues[queue_id] = offset
            self._commits += 1
            if self._commits % self.version_step == 0:
                self.data_version = self.data_version.next(self.clock.now_ms())
            self._mark_changed()
        if old is not None and offset < old:
            log.warning(
                "consumer offset moved back: key=%s queue=%d offset=%d stored=%d client=%s",
                key,
                queue_id,
                offset,
                old,
                client_host,
            )
        return True

    def assign_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """Set an offset unconditionally (admin reset, pop); ValueError for a negative one."""
        if offset < 0 or queue_id < 0:
            raise ValueError(f"cannot assign offset {offset} to queue {queue_id}")
        with self._lock:
            self._table.setdefault(topic_group_key(topic, group), {})[queue_id] = offset
            self.data_version = self.data_version.next(self.clock.now_ms())
            self._mark_changed()

    # -- server-side reset -----------------------------------------------------------------------------
    def add_reset_listener(self, listener: ResetListener) -> None:
        """Call ``listener(group, topic, queue_id, offset)`` after every queue reset (the POP hook)."""
        self._reset_listeners.append(listener)

    def assign_reset_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """Reset the group's offset on the queue: stored (the entry is created if needed), pending until a
        consumer picks it up, and announced to the reset listeners. ValueError for a negative value."""
        if offset < 0 or queue_id < 0 or not topic or not group:
            raise ValueError(f"cannot reset {topic}@{group} queue {queue_id} to {offset}")
        key = topic_group_key(topic, group)
        with self._lock:
            self._reset_table.setdefault(key, {})[queue_id] = offset
            self._table.setdefault(key, {})[queue_id] = offset
            self._pull_table.get(key, {}).pop(queue_id, None)
            self.data_version = self.data_version.next(self.clock.now_ms())
            self._mark_changed()
        log.info("reset %s queue %d to offset %d", key, queue_id, offset)
        for listener in list(self._reset_listeners):
            try:
                listener(group, topic, queue_id, offset)
            except Exception:
                log.exception("reset listener %r failed for %s q%d", listener, key, queue_id)

    def has_offset_reset(self, group: str, topic: str, queue_id: int) -> bool:
        return queue_id in self._reset_table.get(topic_group_key(topic, group), ())

    def query_then_erase_reset_offset(self, group: str, topic: str, queue_id: int) -> int | None:
        """The pending reset of the queue, now consumed (None when there is none)."""
        key = topic_group_key(topic, group)
        with self._lock:
            queues = self._reset_table.get(key)
            if queues is None or queue_id not in queues:
                return None
            offset = queues.pop(queue_id)
            if not queues:
                del self._reset_table[key]
            self._mark_changed()
        return offset

    def pending_resets(self) -> dict[str, dict[int, int]]:
        """A copy of the resets no consumer has picked up yet."""
        with self._lock:
            return {k: dict(v) for k, v in self._reset_table.items()}

    def commit_pull_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """Remember the last pull position (not persisted)."""
        self._pull_table.setdefault(topic_group_key(topic, group), {})[queue_id] = offset

    # -- queries ---------------------------------------------------------------------------------------
    def query_offset(self, group: str, topic: str, queue_id: int) -> int | None:
        """The committed offset, or None when the group never committed one on this queue."""
        queues = self._table.get(topic_group_key(topic, group))
        return queues.get(queue_id) if queues is not None else None

    def query_offsets(self, group: str, topic: str) -> dict[int, int]:
        """A copy of every committed offset of (topic, group); empty when none."""
        return dict(self._table.get(topic_group_key(topic, group), {}))

    def query_pull_offset(self, group: str, topic: str, queue_id: int) -> int | None:
        """Last pull position, else the committed offset, else None."""
        pulled = self._pull_table.get(topic_group_key(topic, group), {}).get(queue_id)
        return pulled if pulled is not None else self.query_offset(group, topic, queue_id)

    def groups_of_topic(self, topic: str) -> set[str]:
        return {tg[1] for key in list(self._table) if (tg := _split_key(key)) and tg[0] == topic}

    def topics_of_group(self, group: str) -> set[str]:
        return {tg[0] for key in list(self._table) if (tg := _split_key(key)) and tg[1] == group}

    def group_topic_map(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for key in list(self._table):
            tg = _split_key(key)
            if tg is not None:
                out.setdefault(tg[1], set()).add(tg[0])
        return out

    def table(self) -> dict[str, dict[int, int]]:
        """A deep copy of the whole table (GET_ALL_CONSUMER_OFFSET, admin)."""
        with self._lock:
            return {k: dict(v) for k, v in self._table.items()}

    # -- removal ---------------------------------------------------------------------------------------
    def remove_group(self, group: str) -> int:
        """Forget every offset of ``group`` (group deleted); the number of topic@group keys removed."""
        return self._remove(lambda topic, g: g == group)

    def remove_topic(self, topic: str) -> int:
        """Forget every group's offsets on ``topic`` (topic deleted); the number of keys removed."""
        return self._remove(lambda t, group: t == topic)

    def remove_offset(self, group: str, topic: str) -> bool:
        """Forget (topic, group) only; True if it existed."""
        return self._remove(lambda t, g: t == topic and g == group) > 0

    def _remove(self, match: Callable[[str, str], bool]) -> int:
        with self._lock:
            known = set(self._table) | set(self._reset_table)
            keys = [k for k in known if (tg := _split_key(k)) is not None and match(*tg)]
            for key in keys:
                log.info("removed consumer offsets %s: %s", key, self._table.pop(key, None))
                self._pull_table.pop(key, None)
                self._reset_table.pop(key, None)
            if keys:
                self.data_version = self.data_version.next(self.clock.now_ms())
                self._mark_changed()
        return len(keys)

    def clone_offset(self, src_group: str, dest_group: str, topic: str) -> bool:
        """Copy (topic, src_group)'s offsets to dest_group (admin clone); False when there are none."""
        with self._lock:
            offsets = self._table.get(topic_group_key(topic, src_group))
            if offsets is None:
                return False
            self._table[topic_group_key(topic, dest_group)] = dict(offsets)
            self.data_version = self.data_version.next(self.clock.now_ms())
            self._mark_changed()
        return True

    # -- serialisation ---------------------------------------------------------------------------------
    def encode_obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataVersion": self.data_version.to_json(),
            "offsetTable": _encode_table(self._table),
        }
        if self._reset_table:
            out["resetOffsetTable"] = _encode_table(self._reset_table)
        return out

    def decode_obj(self, obj: dict[str, Any]) -> None:
        self._table = _decode_table(obj.get("offsetTable"), "offsetTable")
        self._reset_table = {
            k: v for k, v in _decode_table(obj.get("resetOffsetTable"), "resetOffsetTable").items() if v
        }
        self.data_version = DataVersion.from_json(obj.get("dataVersion"))


def _encode_table(table: dict[str, dict[int, int]]) -> dict[str, dict[str, int]]:
    return {key: {str(q): off for q, off in sorted(queues.items())} for key, queues in sorted(table.items())}


def _decode_table(raw: object, name: str) -> dict[str, dict[int, int]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{name} must be an object")
    table: dict[str, dict[int, int]] = {}
    for key, queues in raw.items():
        if not isinstance(queues, dict):
            raise ValueError(f"offsets of {key} must be an object")
        entry: dict[int, int] = {}
        for q, off in queues.items():
            if isinstance(off, bool) or not isinstance(off, int):
                raise ValueError(f"offset of {key} queue {q} is not an integer: {off!r}")
            if off >= 0:  # a Java broker may have stored -1 ("no offset")
                entry[int(q)] = off
        table[key] = entry
    return table


class OffsetPersistService(PersistService):
    """Writes ``consumerOffset.json`` every ``flushConsumerOffsetInterval`` ms when it changed, and on stop."""

    def __init__(self, offsets: ConsumerOffsetManager, clock: Clock, interval_ms: int = 5000) -> None:
        super().__init__("OffsetPersistService", [offsets], clock, interval_ms)
        self.offsets = offsets
