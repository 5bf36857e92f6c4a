"""The offset export document and the pure decisions of import and sync (no I/O here).

Document (``orbitmq admin offset export``), JSON::

    {"format": "orbitmq-offsets", "version": 1, "exportedAt": <ms>, "source": "<namesrv>",
     "offsets": [{"group": "G", "topic": "T", "brokerName": "broker-a", "queueId": 0, "offset": 12,
                  "minOffset": 0, "maxOffset": 20, "lastTimestamp": <ms>}, ...]}

``offset`` is the group's committed next offset; ``lastTimestamp`` the store time of the last consumed
message (offset - 1; 0 when nothing was consumed), as GET_CONSUME_STATS reports it.

Mapping by time (``import --by-timestamp``, ``sync``): another cluster's queues hold other offsets for the
same messages, so a position is carried over as a time: on the target, the group starts at the first message
stored at or after ``lastTimestamp``. That time is the last *consumed* message's, so the target re-delivers
it and everything stored in the same millisecond, and never skips an unconsumed one, provided the target
stored each message no earlier than the source did (true for a mirror or a standby fed by replication):
at-least-once across clusters. When the target's queues match the source's (same broker names, same queue
counts), each queue maps by its own time; otherwise every target queue of the topic starts at one time, the
earliest ``lastTimestamp`` of a source queue that still had unconsumed messages (the latest of all when the
group had consumed everything).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from orbitmq.core.errors import ClientError

__all__ = [
    "DOCUMENT_FORMAT",
    "OffsetChange",
    "OffsetEntry",
    "export_document",
    "is_internal",
    "parse_document",
    "topic_mapping_time",
]

DOCUMENT_FORMAT: Final = "orbitmq-offsets"
DOCUMENT_VERSION: Final = 1

#: Topics and groups an export leaves out: the broker's own bookkeeping, not an application's position.
_INTERNAL_TOPIC_PREFIXES: Final = ("%RETRY%", "%DLQ%", "%SYS%", "rmq_sys_", "RMQ_SYS_", "SCHEDULE_TOPIC_")
_INTERNAL_TOPICS: Final = frozenset({"TBW102", "OFFSET_MOVED_EVENT", "SELF_TEST_TOPIC"})
_INTERNAL_GROUP_PREFIXES: Final = ("CID_RMQ_SYS_", "TOOLS_CONSUMER", "CID_ONSAPI_")


def is_internal(group: str, topic: str) -> bool:
    return (
        topic in _INTERNAL_TOPICS
        or topic.startswith(_INTERNAL_TOPIC_PREFIXES)
        or group.startswith(_INTERNAL_GROUP_PREFIXES)
    )


@dataclass(frozen=True, slots=True, order=True)
class OffsetEntry:
    group: str
    topic: str
    broker_name: str
    queue_id: int
    offset: int
    min_offset: int = 0
    max_offset: int = 0
    last_timestamp: int = 0

    @property
    def caught_up(self) -> bool:
        return self.offset >= self.max_offset

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "topic": self.topic, "brokerName": self.broker_name,
                "queueId": self.queue_id, "offset": self.offset, "minOffset": self.min_offset,
                "maxOffset": self.max_offset, "lastTimestamp": self.last_timestamp}  # fmt: skip

    @classmethod
    def from_json(cls, obj: object, where: str) -> OffsetEntry:
        if not isinstance(obj, Mapping):
            raise ClientError(f"{where}: an offset entry must be an object")

        def text(key: str) -> str:
            value = obj.get(key)
            if not isinstance(value, str) or not value:
                raise ClientError(f"{where}: {key!r} must be a non-empty string")
            return value

        def number(key: str, default: int | None = None) -> int:
            value = obj.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ClientError(f"{where}: {key!r} must be a non-negative integer, got {value!r}")
            return value

        return cls(text("group"), text("topic"), text("brokerName"), number("queueId"), number("offset"),
                   number("minOffset", 0), number("maxOffset", 0), number("lastTimestamp", 0))  # fmt: skip


@dataclass(frozen=True, slots=True)
class OffsetChange:
    """One queue of the target: what it held, what it holds now (``new`` None = skipped, see ``how``)."""

    group: str
    topic: str
    broker_name: str
    queue_id: int
    old: int | None
    new: int | None
    how: str  # "offset", "clamped to [a-b]", "time T", "topic time T", or why it was skipped

    @property
    def skipped(self) -> bool:
        return self.new is None

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "topic": self.topic, "brokerName": self.broker_name,
                "queueId": self.queue_id, "old": self.old, "new": self.new, "how": self.how,
                "skipped": self.skipped}  # fmt: skip


def export_document(entries: Iterable[OffsetEntry], exported_at_ms: int, source: str) -> dict[str, Any]:
    return {"format": DOCUMENT_FORMAT, "version": DOCUMENT_VERSION, "exportedAt": exported_at_ms,
            "source": source, "offsets": [e.to_json() for e in sorted(entries)]}  # fmt: skip


def parse_document(obj: object) -> list[OffsetEntry]:
    """The entries of an export document; ClientError naming what is wrong with it."""
    if not isinstance(obj, Mapping) or obj.get("format") != DOCUMENT_FORMAT:
        raise ClientError(f'not an offset export: expected an object with "format": "{DOCUMENT_FORMAT}"')
    if obj.get("version") != DOCUMENT_VERSION:
        raise ClientError(f"offset export version {obj.get('version')!r} is not supported (expected 1)")
    raw = obj.get("offsets")
    if not isinstance(raw, list):
        raise ClientError('offset export: "offsets" must be a list')
    return [OffsetEntry.from_json(e, f"offsets[{i}]") for i, e in enumerate(raw)]


def topic_mapping_time(entries: Sequence[OffsetEntry]) -> int:
    """The one time every target queue of a topic starts at when the layouts differ (module docstring)."""
    behind = [e.last_timestamp for e in entries if not e.caught_up]
    if behind:
        return min(behind)
    return max((e.last_timestamp for e in entries), default=0)
