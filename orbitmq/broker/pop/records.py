"""Checkpoints (CK) and acks as records of the revive log ``rmq_sys_REVIVE_LOG_<cluster>`` (pop-and-storage
§1.6, §1.7): their JSON bodies with upstream's short field names, their tags (``ck``, ``ack``, ``bAck``) and
unique keys, and the structured key that pairs an ack with its checkpoint.

Pairing key: (topic, group, queueId, startOffset, popTime, brokerName) as a tuple. Upstream concatenates
these without separators, so queue 1 / offset 23 and queue 12 / offset 3 collide (§6.1); a tuple cannot.

Unlike upstream, the records carry no ``TIMER_DELIVER_MS``: they are plain messages appended to the revive
queue in write order, and the revive service (:mod:`orbitmq.broker.pop.revive`) decides when a checkpoint is
due from its own ``popTime + invisibleTime``. An ack therefore always lies after its checkpoint in the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.pop import ACK_TAG, BATCH_ACK_TAG, CK_TAG
from orbitmq.protocol.record import MessageRecord, Prop
from orbitmq.store.api import MessageToStore

__all__ = [
    "AckMsg",
    "CkKey",
    "PopCheckPoint",
    "ReviveRecord",
    "ack_message",
    "ck_message",
    "parse_revive_record",
]


class CkKey(NamedTuple):
    """What pairs acks with their checkpoint (upstream's merge key, without its collisions)."""

    topic: str
    group: str
    queue_id: int
    start_offset: int
    pop_time: int
    broker_name: str


def _int(obj: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"revive record field {key!r} must be an integer, got {value!r}")
    return value


def _str(obj: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str):
            return value
    return ""


@dataclass(slots=True)
class PopCheckPoint:
    """``PopCheckPoint``: one pop of one queue. Offset of message i = ``start_offset + queue_offset_diff[i]``."""

    start_offset: int  # so
    pop_time: int  # pt
    invisible_time: int  # it
    num: int  # n
    queue_id: int  # q
    topic: str  # t: the topic read (normal or pop retry topic)
    cid: str  # c: consumer group
    broker_name: str  # bn
    queue_offset_diff: list[int] = field(default_factory=list)  # d (empty: contiguous, legacy)
    bit_map: int = 0  # bm: always 0 when written
    revive_offset: int = -1  # ro: revive-queue offset, filled when read back
    re_put_times: str = "0"  # rp (a string upstream)

    @property
    def revive_time(self) -> int:
        return self.pop_time + self.invisible_time

    @property
    def key(self) -> CkKey:
        return CkKey(self.topic, self.cid, self.queue_id, self.start_offset, self.pop_time, self.broker_name)

    def offset_at(self, index: int) -> int:
        diff = self.queue_offset_diff
        return self.start_offset + (diff[index] if diff else index)

    def offsets(self) -> list[int]:
        return [self.offset_at(i) for i in range(self.num)]

    def index_of_ack(self, offset: int) -> int:
        """The bit of ``offset`` in this checkpoint, or -1 when it is not one of its messages."""
        rel = offset - self.start_offset
        if rel < 0:
            return -1
        if not self.queue_offset_diff:
            return rel if rel < self.num else -1
        try:
            return self.queue_offset_diff.index(rel)
        except ValueError:
            return -1

    def to_json(self) -> dict[str, Any]:
        return {
            "so": self.start_offset, "pt": self.pop_time, "it": self.invisible_time, "bm": self.bit_map,
            "n": self.num, "q": self.queue_id, "t": self.topic, "c": self.cid, "ro": self.revive_offset,
            "d": self.queue_offset_diff, "bn": self.broker_name, "rp": self.re_put_times,
        }  # fmt: skip

    @classmethod
    def from_json(cls, obj: object) -> PopCheckPoint:
        if not isinstance(obj, dict):
            raise ProtocolError("checkpoint body must be a JSON object")
        diff = obj.get("d") or []
        if not isinstance(diff, list) or not all(isinstance(x, int) for x in diff):
            raise ProtocolError("checkpoint field 'd' must be a list of integers")
        num = _int(obj, "n")
        if not 0 <= num <= 32 or (diff and len(diff) != num):
            raise ProtocolError(f"checkpoint covers {num} messages with {len(diff)} offset diffs")
        return cls(
            start_offset=_int(obj, "so"),
            pop_time=_int(obj, "pt"),
            invisible_time=_int(obj, "it"),
            num=num,
            queue_id=_int(obj, "q"),
            topic=_str(obj, "t", "topic"),
            cid=_str(obj, "c", "cid"),
            broker_name=_str(obj, "bn", "brokerName"),
            queue_offset_diff=list(diff),
            bit_map=_int(obj, "bm", 0),
            revive_offset=_int(obj, "ro", -1),
            re_put_times=str(obj.get("rp") or "0"),
        )


@dataclass(frozen=True, slots=True)
class AckMsg:
    """``AckMsg`` (one offset) or ``BatchAckMsg`` (``ack_offsets``): acks of one checkpoint."""

    start_offset: int  # so: the checkpoint's start offset
    consumer_group: str  # c
    topic: str  # t: the topic read (normal or pop retry topic)
    queue_id: int  # q
    pop_time: int  # pt: the checkpoint's pop time
    broker_name: str  # bn
    ack_offsets: tuple[int, ...]  # ao (single) or aol (batch)

    @property
    def key(self) -> CkKey:
        return CkKey(
            self.topic, self.consumer_group, self.queue_id, self.start_offset, self.pop_time, self.broker_name
        )

    @property
    def is_batch(self) -> bool:
        return len(self.ack_offsets) != 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "so": self.start_offset, "c": self.consumer_group, "t": self.topic, "q": self.queue_id,
            "pt": self.pop_time, "bn": self.broker_name,
        }  # fmt: skip
        if self.is_batch:
            out["ao"] = -1
            out["aol"] = list(self.ack_offsets)
        else:
            out["ao"] = self.ack_offsets[0]
        return out

    @classmethod
    def from_json(cls, obj: object, *, batch: bool, default_broker: str) -> AckMsg:
        if not isinstance(obj, dict):
            raise ProtocolError("ack body must be a JSON object")
        if batch:
            aol = obj.get("aol") or []
            if not isinstance(aol, list) or not all(isinstance(x, int) for x in aol):
                raise ProtocolError("batch ack field 'aol' must be a list of integers")
            offsets = tuple(aol)
        else:
            offsets = (_int(obj, "ao"),)
        return cls(
            start_offset=_int(obj, "so"),
            consumer_group=_str(obj, "c", "consumerGroup"),
            topic=_str(obj, "t", "topic"),
            queue_id=_int(obj, "q"),
            pop_time=_int(obj, "pt"),
            # upstream #8460: an ack without a broker name is the local broker's
            broker_name=_str(obj, "bn", "brokerName") or default_broker,
            ack_offsets=offsets,
        )


def _revive_message(
    topic: str, revive_qid: int, body: dict[str, Any], tag: str, uniq: str, host: tuple[str, int], now: int
) -> MessageToStore:
    return MessageToStore(
        topic=topic,
        queue_id=revive_qid,
        body=orjson.dumps(body),
        properties={Prop.TAGS: tag, Prop.UNIQ_KEY: uniq, Prop.WAIT: "false"},
        born_timestamp=now,
        born_host=host,
    )


def ck_message(
    ck: PopCheckPoint, revive_topic: str, revive_qid: int, host: tuple[str, int], now: int
) -> MessageToStore:
    uniq = "@".join(
        str(x) for x in (ck.topic, ck.queue_id, ck.start_offset, ck.cid, ck.pop_time, ck.broker_name, CK_TAG)
    )
    return _revive_message(revive_topic, revive_qid, ck.to_json(), CK_TAG, uniq, host, now)


def ack_message(
    ack: AckMsg, revive_topic: str, revive_qid: int, host: tuple[str, int], now: int
) -> MessageToStore:
    if ack.is_batch:
        offsets = "[" + ", ".join(str(o) for o in ack.ack_offsets) + "]"
        parts: Iterable[object] = (ack.topic, ack.queue_id, offsets, ack.consumer_group, ack.pop_time,
                                   BATCH_ACK_TAG)  # fmt: skip
        tag = BATCH_ACK_TAG
    else:
        parts = (ack.topic, ack.queue_id, ack.ack_offsets[0], ack.consumer_group, ack.pop_time,
                 ack.broker_name, ACK_TAG)  # fmt: skip
        tag = ACK_TAG
    return _revive_message(revive_topic, revive_qid, ack.to_json(), tag, "@".join(str(p) for p in parts),
                           host, now)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReviveRecord:
    """One revive-log record read back: a checkpoint or an ack, at its revive-queue offset."""

    offset: int
    ck: PopCheckPoint | None = None
    ack: AckMsg | None = None


def parse_revive_record(rec: MessageRecord, default_broker: str) -> ReviveRecord:
    """Raises :class:`ProtocolError` for a body that is not a checkpoint or ack of ours."""
    tag = rec.tags
    try:
        obj = orjson.loads(rec.body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"revive record at {rec.queue_offset} is not JSON: {exc}") from None
    if tag == CK_TAG:
        ck = PopCheckPoint.from_json(obj)
        ck.revive_offset = rec.queue_offset
        if not ck.broker_name:
            ck.broker_name = default_broker
        return ReviveRecord(rec.queue_offset, ck=ck)
    if tag in (ACK_TAG, BATCH_ACK_TAG):
        ack = AckMsg.from_json(obj, batch=tag == BATCH_ACK_TAG, default_broker=default_broker)
        return ReviveRecord(rec.queue_offset, ack=ack)
    raise ProtocolError(f"revive record at {rec.queue_offset} has unknown tag {tag!r}")
