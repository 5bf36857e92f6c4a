"""POP consumption on the wire (pop-and-storage §1.1, §1.5, §1.6; remoting-protocol §2.8). Pure: no I/O.

- The request and response headers of POP_MESSAGE, ACK_MESSAGE, BATCH_ACK_MESSAGE (body),
  CHANGE_MESSAGE_INVISIBLETIME, PEEK_MESSAGE, NOTIFICATION and POLLING_INFO, with upstream's field names.
  Each header parses from a :class:`RemotingCommand` (``from_command``) and renders its ext fields
  (``to_fields``) the Java way.
- The receipt handle, upstream's ``extraInfo`` / ``POP_CK``: eight space-separated fields
  ``ckOffset popTime invisibleTime reviveQid retryKind brokerName queueId queueOffset``
  (:class:`ExtraInfo`). ``retryKind`` is ``0`` for the normal topic, ``1`` for a V1 pop retry topic
  ``%RETRY%<group>_<topic>``, ``2`` for a V2 one ``%RETRY%<group>+<topic>``; ``reviveQid`` 999 marks FIFO.
- The pop response's offset-info strings (``startOffsetInfo``, ``msgOffsetInfo``, ``orderCountInfo``):
  :class:`PopOffsetInfo` builds them, the ``parse_*`` functions read them, and
  :func:`receipt_handles` rebuilds every message's handle from them exactly as the Java client does.
- The batch-ack body ``{"brokerName": b, "acks": [BatchAck]}``, whose ``b`` bit set is the base64 of Java's
  little-endian ``BitSet.toByteArray()``, bit i meaning offset ``so + i``.

Malformed input raises :class:`~orbitmq.core.errors.ProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "ACK_TAG",
    "BATCH_ACK_TAG",
    "CK_TAG",
    "INIT_MODE_MAX",
    "INIT_MODE_MIN",
    "MAX_POP_NUMS",
    "POP_ORDER_REVIVE_QUEUE",
    "RETRY_KIND_NORMAL",
    "RETRY_KIND_V1",
    "RETRY_KIND_V2",
    "REVIVE_GROUP",
    "AckMessageRequestHeader",
    "BatchAck",
    "BatchAckMessageRequestBody",
    "ChangeInvisibleTimeRequestHeader",
    "ChangeInvisibleTimeResponseHeader",
    "ExtraInfo",
    "NotificationRequestHeader",
    "NotificationResponseHeader",
    "PeekMessageRequestHeader",
    "PollingInfoRequestHeader",
    "PollingInfoResponseHeader",
    "PopMessageRequestHeader",
    "PopMessageResponseHeader",
    "PopOffsetInfo",
    "PoppedMessage",
    "decode_bitset",
    "encode_bitset",
    "is_pop_retry_topic_v2",
    "parse_msg_offset_info",
    "parse_order_count_info",
    "parse_pop_retry_topic_v2",
    "parse_start_offset_info",
    "pop_retry_topic",
    "pop_retry_topic_v1",
    "pop_retry_topic_v2",
    "queue_offset_key",
    "real_topic",
    "receipt_handles",
    "retry_kind",
    "revive_topic",
]

#: ``KeyBuilder.POP_ORDER_REVIVE_QUEUE``: the revive queue id of a FIFO pop (which writes no checkpoint).
POP_ORDER_REVIVE_QUEUE: Final = 999
#: One pop returns at most this many messages (the width of a checkpoint's ack bitmap).
MAX_POP_NUMS: Final = 32
#: The group whose offsets in the offset table are the revive progress of each revive queue.
REVIVE_GROUP: Final = "CID_RMQ_SYS_REVIVE_GROUP"
#: Tags of the revive-log records: checkpoint, ack, batch ack.
CK_TAG: Final = "ck"
ACK_TAG: Final = "ack"
BATCH_ACK_TAG: Final = "bAck"
#: ``ConsumeInitMode``: where a group without an offset starts.
INIT_MODE_MIN: Final = 0
INIT_MODE_MAX: Final = 1

RETRY_KIND_NORMAL: Final = "0"
RETRY_KIND_V1: Final = "1"
RETRY_KIND_V2: Final = "2"
_RETRY_PREFIX: Final = "%RETRY%"
_KEY_SEPARATOR: Final = " "
_QUEUE_OFFSET: Final = "qo"


def revive_topic(cluster: str) -> str:
    """``rmq_sys_REVIVE_LOG_<brokerClusterName>``: the topic holding checkpoints and acks."""
    return f"rmq_sys_REVIVE_LOG_{cluster}"


# -- pop retry topics ------------------------------------------------------------------------------------
def pop_retry_topic_v1(topic: str, group: str) -> str:
    """``%RETRY%<group>_<topic>`` (default naming; cannot be split back into group and topic)."""
    return f"{_RETRY_PREFIX}{group}_{topic}"


def pop_retry_topic_v2(topic: str, group: str) -> str:
    """``%RETRY%<group>+<topic>`` (``enableRetryTopicV2``; '+' is not allowed in names, so it splits)."""
    return f"{_RETRY_PREFIX}{group}+{topic}"


def pop_retry_topic(topic: str, group: str, v2: bool) -> str:
    return pop_retry_topic_v2(topic, group) if v2 else pop_retry_topic_v1(topic, group)


def is_pop_retry_topic_v2(topic: str) -> bool:
    return topic.startswith(_RETRY_PREFIX) and "+" in topic


def parse_pop_retry_topic_v2(topic: str) -> tuple[str, str] | None:
    """(group, original topic) of a V2 pop retry topic; None for any other name."""
    if not is_pop_retry_topic_v2(topic):
        return None
    group, _, original = topic[len(_RETRY_PREFIX) :].partition("+")
    return (group, original) if group and original else None


def retry_kind(topic: str) -> str:
    """The handle's retry kind of a message read from ``topic`` (upstream ``ExtraInfoUtil.getRetry``)."""
    if is_pop_retry_topic_v2(topic):
        return RETRY_KIND_V2
    return RETRY_KIND_V1 if topic.startswith(_RETRY_PREFIX) else RETRY_KIND_NORMAL


def real_topic(topic: str, group: str, kind: str) -> str:
    """The topic a handle of ``kind`` refers to, given the original topic and group."""
    if kind == RETRY_KIND_NORMAL:
        return topic
    if kind == RETRY_KIND_V1:
        return pop_retry_topic_v1(topic, group)
    if kind == RETRY_KIND_V2:
        return pop_retry_topic_v2(topic, group)
    raise ProtocolError(f"unknown retry kind {kind!r} in a receipt handle")


# -- the receipt handle ------------------------------------------------------------------------------------
def _long(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProtocolError(f"{what} is not an integer: {text[:40]!r}") from None


@dataclass(frozen=True, slots=True)
class ExtraInfo:
    """A parsed receipt handle. ``queue_offset`` is None only in the old seven-field form."""

    ck_offset: int  # the checkpoint's start offset (after a change of invisible time: the message's own)
    pop_time: int  # ms, shared by the whole pop request
    invisible_time: int  # ms
    revive_qid: int  # revive queue of the checkpoint; 999 for FIFO
    retry_kind: str  # "0" normal, "1" retry V1, "2" retry V2
    broker_name: str
    queue_id: int
    queue_offset: int | None = None

    @property
    def revive_time(self) -> int:
        return self.pop_time + self.invisible_time

    @property
    def is_order(self) -> bool:
        return self.revive_qid == POP_ORDER_REVIVE_QUEUE

    def real_topic(self, topic: str, group: str) -> str:
        return real_topic(topic, group, self.retry_kind)

    def encode(self) -> str:
        fields = [
            self.ck_offset,
            self.pop_time,
            self.invisible_time,
            self.revive_qid,
            self.retry_kind,
            self.broker_name,
            self.queue_id,
        ]
        if self.queue_offset is not None:
            fields.append(self.queue_offset)
        return _KEY_SEPARATOR.join(str(f) for f in fields)

    @classmethod
    def build(
        cls,
        ck_offset: int,
        pop_time: int,
        invisible_time: int,
        revive_qid: int,
        topic: str,
        broker_name: str,
        queue_id: int,
        queue_offset: int | None = None,
    ) -> ExtraInfo:
        """Upstream ``buildExtraInfo``: the kind is derived from ``topic`` (the topic actually read)."""
        return cls(
            ck_offset,
            pop_time,
            invisible_time,
            revive_qid,
            retry_kind(topic),
            broker_name,
            queue_id,
            queue_offset,
        )

    @classmethod
    def parse(cls, text: str | None) -> ExtraInfo:
        if not text:
            raise ProtocolError("empty receipt handle (extraInfo)")
        parts = text.split(_KEY_SEPARATOR)
        if len(parts) < 7:
            raise ProtocolError(f"receipt handle has {len(parts)} fields, needs 7 or 8: {text[:120]!r}")
        kind = parts[4]
        if kind not in (RETRY_KIND_NORMAL, RETRY_KIND_V1, RETRY_KIND_V2):
            raise ProtocolError(f"unknown retry kind {kind!r} in receipt handle {text[:120]!r}")
        return cls(
            ck_offset=_long(parts[0], "handle checkpoint offset"),
            pop_time=_long(parts[1], "handle pop time"),
            invisible_time=_long(parts[2], "handle invisible time"),
            revive_qid=_long(parts[3], "handle revive queue id"),
            retry_kind=kind,
            broker_name=parts[5],
            queue_id=_long(parts[6], "handle queue id"),
            queue_offset=_long(parts[7], "handle queue offset") if len(parts) > 7 else None,
        )


# -- offset info strings -------------------------------------------------------------------------------------
def queue_offset_key(queue_id: int, queue_offset: int) -> str:
    """``qo<queueId>%<offset>``: the per-message key of ``orderCountInfo``."""
    return f"{_QUEUE_OFFSET}{queue_id}%{queue_offset}"


@dataclass(slots=True)
class PopOffsetInfo:
    """Accumulates the three info strings of one pop response, queue by queue, in visit order."""

    start: list[str] = field(default_factory=list)
    msg: list[str] = field(default_factory=list)
    order_count: list[str] = field(default_factory=list)

    def add_queue(self, topic: str, queue_id: int, start_offset: int, offsets: Sequence[int]) -> None:
        kind = retry_kind(topic)
        self.start.append(f"{kind} {queue_id} {start_offset}")
        self.msg.append(f"{kind} {queue_id} {','.join(str(o) for o in offsets)}")

    def add_order_counts(self, topic: str, queue_id: int, counts: Mapping[int, int]) -> None:
        """FIFO: one entry per message offset, plus the per-queue minimum for old clients."""
        kind = retry_kind(topic)
        for offset, count in counts.items():
            self.order_count.append(f"{kind} {queue_offset_key(queue_id, offset)} {count}")
        if counts:
            self.order_count.append(f"{kind} {queue_id} {min(counts.values())}")

    @property
    def start_offset_info(self) -> str:
        return ";".join(self.start)

    @property
    def msg_offset_info(self) -> str:
        return ";".join(self.msg)

    @property
    def order_count_info(self) -> str:
        return ";".join(self.order_count)


def _entries(text: str | None, what: str) -> Iterable[tuple[str, str]]:
    """(``kind@key``, value) of each ``;``-separated three-field entry; duplicates are an error."""
    if not text:
        return []
    seen: dict[str, str] = {}
    for one in text.split(";"):
        parts = one.split(_KEY_SEPARATOR)
        if len(parts) != 3 or not all(parts):
            raise ProtocolError(f"malformed {what} entry {one[:80]!r}")
        key = f"{parts[0]}@{parts[1]}"
        if key in seen:
            raise ProtocolError(f"duplicate {what} entry {key!r}")
        seen[key] = parts[2]
    return seen.items()


def parse_start_offset_info(text: str | None) -> dict[str, int]:
    """``startOffsetInfo`` → {``"<kind>@<queueId>"``: start offset}."""
    return {k: _long(v, "start offset") for k, v in _entries(text, "startOffsetInfo")}


def parse_msg_offset_info(text: str | None) -> dict[str, list[int]]:
    """``msgOffsetInfo`` → {``"<kind>@<queueId>"``: message offsets in response order}."""
    return {k: [_long(o, "message offset") for o in v.split(",")] for k, v in _entries(text, "msgOffsetInfo")}


def parse_order_count_info(text: str | None) -> dict[str, int]:
    """``orderCountInfo`` → {``"<kind>@qo<q>%<offset>"`` or ``"<kind>@<q>"``: reconsume count}."""
    return {k: _long(v, "order count") for k, v in _entries(text, "orderCountInfo")}


@dataclass(frozen=True, slots=True)
class PoppedMessage:
    """What :func:`receipt_handles` needs of one message of a pop body."""

    topic: str
    queue_id: int
    queue_offset: int
    pop_ck: str | None  # the POP_CK property the broker put on a retry message, if any


def receipt_handles(
    header: PopMessageResponseHeader, messages: Sequence[PoppedMessage], broker_name: str
) -> list[tuple[str, int]]:
    """Each message's (receipt handle, reconsume count from ``orderCountInfo`` or -1), computed as the Java
    client's ``processPopResponse`` does: a handle the broker already put in ``POP_CK`` is kept; otherwise
    it is built from the info strings, keyed by the message's kind and queue."""
    starts = parse_start_offset_info(header.start_offset_info)
    offsets = parse_msg_offset_info(header.msg_offset_info)
    counts = parse_order_count_info(header.order_count_info)

    def kind_of(m: PoppedMessage) -> str:
        return ExtraInfo.parse(m.pop_ck).retry_kind if m.pop_ck else retry_kind(m.topic)

    seen: dict[str, list[int]] = {}
    for m in messages:
        seen.setdefault(f"{kind_of(m)}@{m.queue_id}", []).append(m.queue_offset)
    out: list[tuple[str, int]] = []
    for m in messages:
        kind = kind_of(m)
        key = f"{kind}@{m.queue_id}"
        count = counts.get(f"{kind}@{queue_offset_key(m.queue_id, m.queue_offset)}", counts.get(key, -1))
        if m.pop_ck:
            out.append((m.pop_ck, count))
            continue
        if key not in starts or key not in offsets:
            raise ProtocolError(f"pop response has no offset info for {key}")
        index = seen[key].index(m.queue_offset)
        if index >= len(offsets[key]):
            raise ProtocolError(f"pop response lists fewer offsets than messages for {key}")
        handle = ExtraInfo(
            starts[key], header.pop_time, header.invisible_time, header.revive_qid, kind, broker_name,
            m.queue_id, offsets[key][index],
        )  # fmt: skip
        out.append((handle.encode(), count))
    return out


# -- headers -------------------------------------------------------------------------------------------------
def _java(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _fields(**values: object) -> dict[str, str]:
    return {k: _java(v) for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class PopMessageRequestHeader:
    consumer_group: str  # consumerGroup
    topic: str  # topic
    queue_id: int  # queueId: negative = every queue (normalised to -1)
    max_msg_nums: int  # maxMsgNums
    invisible_time: int  # invisibleTime (ms)
    poll_time: int  # pollTime (ms; 0 = answer at once)
    born_time: int  # bornTime (client ms; 0 = the broker's now)
    init_mode: int  # initMode: 0 MIN, 1 MAX
    exp_type: str | None = None  # expType
    exp: str | None = None  # exp
    order: bool = False  # order (FIFO)
    attempt_id: str | None = None  # attemptId (FIFO re-entrance)

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> PopMessageRequestHeader:
        return cls(
            consumer_group=cmd.str_field("consumerGroup"),
            topic=cmd.str_field("topic"),
            queue_id=max(-1, cmd.int_field("queueId")),
            max_msg_nums=cmd.int_field("maxMsgNums"),
            invisible_time=cmd.int_field("invisibleTime"),
            poll_time=cmd.int_field("pollTime", 0),
            born_time=cmd.int_field("bornTime", 0),
            init_mode=cmd.int_field("initMode", INIT_MODE_MIN),
            exp_type=cmd.opt_str("expType"),
            exp=cmd.opt_str("exp"),
            order=cmd.bool_field("order"),
            attempt_id=cmd.opt_str("attemptId"),
        )

    def to_fields(self) -> dict[str, str]:
        return _fields(
            consumerGroup=self.consumer_group, topic=self.topic, queueId=self.queue_id,
            maxMsgNums=self.max_msg_nums, invisibleTime=self.invisible_time, pollTime=self.poll_time,
            bornTime=self.born_time, initMode=self.init_mode, expType=self.exp_type, exp=self.exp,
            order=self.order, attemptId=self.attempt_id,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PopMessageResponseHeader:
    pop_time: int  # popTime
    invisible_time: int  # invisibleTime
    revive_qid: int  # reviveQid
    rest_num: int  # restNum: estimated backlog left
    start_offset_info: str | None = None  # startOffsetInfo
    msg_offset_info: str | None = None  # msgOffsetInfo
    order_count_info: str | None = None  # orderCountInfo (FIFO only)

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> PopMessageResponseHeader:
        return cls(
            pop_time=cmd.int_field("popTime"),
            invisible_time=cmd.int_field("invisibleTime"),
            revive_qid=cmd.int_field("reviveQid"),
            rest_num=cmd.int_field("restNum", 0),
            start_offset_info=cmd.opt_str("startOffsetInfo"),
            msg_offset_info=cmd.opt_str("msgOffsetInfo"),
            order_count_info=cmd.opt_str("orderCountInfo"),
        )

    def to_fields(self) -> dict[str, str]:
        return _fields(
            popTime=self.pop_time, invisibleTime=self.invisible_time, reviveQid=self.revive_qid,
            restNum=self.rest_num, startOffsetInfo=self.start_offset_info,
            msgOffsetInfo=self.msg_offset_info, orderCountInfo=self.order_count_info,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AckMessageRequestHeader:
    consumer_group: str  # consumerGroup
    topic: str  # topic (the original topic; the handle's kind names the retry topic)
    queue_id: int  # queueId
    extra_info: str  # extraInfo: the receipt handle
    offset: int  # offset: the message's queue offset

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> AckMessageRequestHeader:
        return cls(
            consumer_group=cmd.str_field("consumerGroup"),
            topic=cmd.str_field("topic"),
            queue_id=cmd.int_field("queueId"),
            extra_info=cmd.str_field("extraInfo"),
            offset=cmd.int_field("offset"),
        )

    def to_fields(self) -> dict[str, str]:
        return _fields(
            consumerGroup=self.consumer_group, topic=self.topic, queueId=self.queue_id,
            extraInfo=self.extra_info, offset=self.offset,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChangeInvisibleTimeRequestHeader:
    consumer_group: str  # consumerGroup
    topic: str  # topic
    queue_id: int  # queueId
    extra_info: str  # extraInfo
    offset: int  # offset
    invisible_time: int  # invisibleTime (ms from now)

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> ChangeInvisibleTimeRequestHeader:
        return cls(
            consumer_group=cmd.str_field("consumerGroup"),
            topic=cmd.str_field("topic"),
            queue_id=cmd.int_field("queueId"),
            extra_info=cmd.str_field("extraInfo"),
            offset=cmd.int_field("offset"),
            invisible_time=cmd.int_field("invisibleTime"),
        )

    def to_fields(self) -> dict[str, str]:
        return _fields(
            consumerGroup=self.consumer_group, topic=self.topic, queueId=self.queue_id,
            extraInfo=self.extra_info, offset=self.offset, invisibleTime=self.invisible_time,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChangeInvisibleTimeResponseHeader:
    pop_time: int  # popTime: of the new handle
    invisible_time: int  # invisibleTime
    revive_qid: int  # reviveQid

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> ChangeInvisibleTimeResponseHeader:
        return cls(cmd.int_field("popTime"), cmd.int_field("invisibleTime"), cmd.int_field("reviveQid"))

    def to_fields(self) -> dict[str, str]:
        return _fields(popTime=self.pop_time, invisibleTime=self.invisible_time, reviveQid=self.revive_qid)

    def new_handle(self, old: ExtraInfo, offset: int) -> ExtraInfo:
        """The handle a client builds from this answer: the message's own offset as checkpoint offset."""
        return ExtraInfo(
            offset, self.pop_time, self.invisible_time, self.revive_qid, old.retry_kind, old.broker_name,
            old.queue_id, offset,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PeekMessageRequestHeader:
    consumer_group: str  # consumerGroup
    topic: str  # topic
    queue_id: int  # queueId (negative = every queue)
    max_msg_nums: int  # maxMsgNums

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> PeekMessageRequestHeader:
        return cls(
            consumer_group=cmd.str_field("consumerGroup"),
            topic=cmd.str_field("topic"),
            queue_id=max(-1, cmd.int_field("queueId")),
            max_msg_nums=cmd.int_field("maxMsgNums"),
        )

    def to_fields(self) -> dict[str, str]:
        return _fields(
            consumerGroup=self.consumer_group, topic=self.topic, queueId=self.queue_id,
            maxMsgNums=self.max_msg_nums,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NotificationRequestHeader:
    consumer_group: str  # consumerGroup
    topic: str  # topic
    queue_id: int  # queueId (negative = every queue)
    poll_time: int  # pollTime (ms)
    born_time: int  # bornTime (client ms)
    order: bool = False  # order
    attempt_id: str | None = None  # attemptId

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> NotificationRequestHeader:
        return cls(
            consumer_group=cmd.str_field("consumerGroup"),
            topic=cmd.str_field("topic"),
            queue_id=max(-1, cmd.int_field("queueId")),
            poll_time=cmd.int_field("pollTime", 0),
            born_time=cmd.int_field("bornTime", 0),
            order=cmd.bool_field("order"),
            attempt_id=cmd.opt_str("attemptId"),
        )

    def to_fields(self) -> dict[str, str]:
        return _fields(
            consumerGroup=self.consumer_group, topic=self.topic, queueId=self.queue_id,
            pollTime=self.poll_time, bornTime=self.born_time, order=self.order, attemptId=self.attempt_id,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NotificationResponseHeader:
    has_msg: bool  # hasMsg
    polling_full: bool = False  # pollingFull

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> NotificationResponseHeader:
        return cls(cmd.bool_field("hasMsg"), cmd.bool_field("pollingFull"))

    def to_fields(self) -> dict[str, str]:
        return _fields(hasMsg=self.has_msg, pollingFull=self.polling_full)


@dataclass(frozen=True, slots=True)
class PollingInfoRequestHeader:
    consumer_group: str  # consumerGroup
    topic: str  # topic
    queue_id: int  # queueId

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> PollingInfoRequestHeader:
        return cls(cmd.str_field("consumerGroup"), cmd.str_field("topic"), max(-1, cmd.int_field("queueId")))

    def to_fields(self) -> dict[str, str]:
        return _fields(consumerGroup=self.consumer_group, topic=self.topic, queueId=self.queue_id)


@dataclass(frozen=True, slots=True)
class PollingInfoResponseHeader:
    polling_num: int  # pollingNum: pop requests held for the key

    @classmethod
    def from_command(cls, cmd: RemotingCommand) -> PollingInfoResponseHeader:
        return cls(cmd.int_field("pollingNum"))

    def to_fields(self) -> dict[str, str]:
        return _fields(pollingNum=self.polling_num)


# -- batch ack body ------------------------------------------------------------------------------------------
def encode_bitset(bits: Iterable[int]) -> str:
    """Java ``BitSet.toByteArray()`` (little-endian, no trailing zero bytes) as fastjson's base64."""
    indexes = list(bits)
    if any(i < 0 for i in indexes):
        raise ValueError("bit indexes must be non-negative")
    value = 0
    for i in indexes:
        value |= 1 << i
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "little")).decode()


def decode_bitset(text: str) -> list[int]:
    """The set bit indexes of a base64 Java ``BitSet``, ascending."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"batch ack bit set is not base64: {text[:40]!r}") from None
    value = int.from_bytes(raw, "little")
    return [i for i in range(value.bit_length()) if value >> i & 1]


def _req(obj: Mapping[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ProtocolError(f"batch ack field {key!r} must be an integer, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ProtocolError(f"batch ack field {key!r} must be a string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class BatchAck:
    """One entry of a batch ack: the acked offsets of one checkpoint (``so`` + each bit index)."""

    consumer_group: str  # c
    topic: str  # t (original topic)
    retry: str  # r: retry kind
    start_offset: int  # so
    queue_id: int  # q
    revive_queue_id: int  # rq
    pop_time: int  # pt
    invisible_time: int  # it
    bits: tuple[int, ...]  # b: offset so + i is acked for every i

    @property
    def offsets(self) -> list[int]:
        return [self.start_offset + i for i in self.bits]

    def to_json(self) -> dict[str, Any]:
        return {
            "c": self.consumer_group, "t": self.topic, "r": self.retry, "so": self.start_offset,
            "q": self.queue_id, "rq": self.revive_queue_id, "pt": self.pop_time, "it": self.invisible_time,
            "b": encode_bitset(self.bits),
        }  # fmt: skip

    @classmethod
    def from_json(cls, obj: object) -> BatchAck:
        if not isinstance(obj, dict):
            raise ProtocolError(f"batch ack entry must be an object, got {type(obj).__name__}")
        bits = obj.get("b")
        return cls(
            consumer_group=_req(obj, "c", str),
            topic=_req(obj, "t", str),
            retry=str(obj.get("r", RETRY_KIND_NORMAL)),
            start_offset=_req(obj, "so", int),
            queue_id=_req(obj, "q", int),
            revive_queue_id=_req(obj, "rq", int),
            pop_time=_req(obj, "pt", int),
            invisible_time=_req(obj, "it", int),
            bits=tuple(decode_bitset(bits)) if isinstance(bits, str) and bits else (),
        )


@dataclass(frozen=True, slots=True)
class BatchAckMessageRequestBody:
    broker_name: str | None  # brokerName
    acks: tuple[BatchAck, ...]  # acks

    def encode(self) -> bytes:
        return orjson.dumps({"brokerName": self.broker_name, "acks": [a.to_json() for a in self.acks]})

    @classmethod
    def decode(cls, body: bytes) -> BatchAckMessageRequestBody:
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"batch ack body is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ProtocolError("batch ack body must be a JSON object")
        acks = obj.get("acks") or []
        name = obj.get("brokerName")
        if not isinstance(acks, list) or not isinstance(name, str | None):
            raise ProtocolError("batch ack body: acks must be a list and brokerName a string")
        return cls(name, tuple(BatchAck.from_json(a) for a in acks))
