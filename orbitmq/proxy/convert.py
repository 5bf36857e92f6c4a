"""gRPC ``Message`` ↔ RocketMQ message properties and stored records. Pure functions.

Sending: a client's message becomes a remoting send (properties, sysFlag) the way the Java proxy builds it
(``SendMessageActivity``): user properties may not use a reserved key, UNIQ_KEY is the client's message id,
the producer group of transactional messages is the topic, ``message_group`` is the sharding key and
``delivery_timestamp`` becomes ``TIMER_DELIVER_MS``.

Delivering: a stored record becomes a ``Message`` the way both official clients accept it
(grpc-protocol.md §4.1): MD5 upper-case hex body digest (never CRC32: the clients disagree on its text),
IDENTITY encoding (zlib-compressed records are inflated here), ``delivery_attempt`` = reconsume times + 1.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from rocketmq.grpc_protocol import definition_pb2 as pb

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.record import MessageRecord, Prop, SysFlag
from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.status import Code, ProxyError

__all__ = [
    "RESERVED_PROPERTIES",
    "OutgoingMessage",
    "duration_ms",
    "message_type_of",
    "ms_duration",
    "ms_timestamp",
    "outgoing_message",
    "record_to_message",
    "subscription_filter",
    "timestamp_ms",
]

#: Property names the system owns (RocketMQ ``MessageConst.STRING_HASH_SET`` plus the 5.x timer, pop,
#: sharding and trace keys): a client may not set them as user properties, and they are not delivered as such.
RESERVED_PROPERTIES = frozenset(
    {
        "TRACE_ON", "MSG_REGION", "KEYS", "TAGS", "WAIT", "DELAY", "RETRY_TOPIC", "REAL_TOPIC", "REAL_QID",
        "TRAN_MSG", "PGROUP", "MIN_OFFSET", "MAX_OFFSET", "BUYER_ID", "ORIGIN_MESSAGE_ID", "TRANSFER_FLAG",
        "CORRECTION_FLAG", "MQ2_FLAG", "RECONSUME_TIME", "UNIQ_KEY", "MAX_RECONSUME_TIMES",
        "CONSUME_START_TIME", "TRAN_PREPARED_QUEUE_OFFSET", "TRANSACTION_CHECK_TIMES",
        "CHECK_IMMUNITY_TIME_IN_SECONDS", "INSTANCE_ID", "CORRELATION_ID", "REPLY_TO_CLIENT", "TTL",
        "ARRIVE_TIME", "PUSH_REPLY_TIME", "CLUSTER", "MSG_TYPE", "INNER_MULTI_QUEUE_OFFSET",
        "INNER_MULTI_DISPATCH", "__transactionId__", "POP_CK", "POP_CK_OFFSET", "1ST_POP_TIME",
        "__SHARDINGKEY", "__BORNHOST", "TRACE_CONTEXT", "TIMER_DELIVER_MS", "TIMER_DELAY_SEC",
        "TIMER_DELAY_MS", "TIMER_OUT_MS", "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES",
        "TIMER_DEL_UNIQKEY", "TIMER_DEL_MS", "TIMER_DELAY_LEVEL", "__CRC32#", "DLQ_ORIGIN_TOPIC",
        "DLQ_ORIGIN_MESSAGE_ID", "__STARTDELIVERTIME", "RECALL_HANDLE",
    }
)  # fmt: skip

TRACE_CONTEXT = "TRACE_CONTEXT"
MessageType: Any = pb.MessageType


# -- time ------------------------------------------------------------------------------------------------
def timestamp_ms(ts: Any) -> int:
    return int(ts.seconds) * 1000 + int(ts.nanos) // 1_000_000


def ms_timestamp(ms: int) -> Any:
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def duration_ms(d: Any) -> int:
    return int(d.seconds) * 1000 + int(d.nanos) // 1_000_000


def ms_duration(ms: int) -> Any:
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


# -- sending ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One client message, ready for a remoting send."""

    topic: str
    body: bytes
    properties: dict[str, str]
    sys_flag: int
    born_timestamp_ms: int
    message_id: str
    message_type: int
    message_group: str | None
    delivery_timestamp_ms: int | None


def outgoing_message(msg: Any, config: ProxyConfig, now_ms: int) -> OutgoingMessage:
    """Validate one ``apache.rocketmq.v2.Message`` and build its remoting form (ProxyError if invalid)."""
    sp = msg.system_properties
    topic = msg.topic.name
    body = bytes(msg.body)
    if sp.body_encoding == pb.Encoding.GZIP:
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise ProxyError(Code.MESSAGE_CORRUPTED, f"body is not valid gzip: {exc}") from None
    if not body and config.enable_message_body_empty_check:
        raise ProxyError(Code.MESSAGE_BODY_EMPTY, "message body is empty")
    if 0 < config.max_message_size < len(body):
        raise ProxyError(
            Code.MESSAGE_BODY_TOO_LARGE,
            f"message body of {len(body)} bytes exceeds maxMessageSize {config.max_message_size}",
        )
    if not sp.message_id:
        raise ProxyError(Code.ILLEGAL_MESSAGE_ID, "message id is empty")
    props = _user_properties(msg.user_properties, config)
    if sp.tag:
        _check_tag(sp.tag)
        props[Prop.TAGS] = sp.tag
    if len(sp.keys):
        for key in sp.keys:
            if not key.strip() or any(c in key for c in "\x01\x02"):
                raise ProxyError(
                    Code.ILLEGAL_MESSAGE_KEY, f"message key {key!r} is blank or has control chars"
                )
        props[Prop.KEYS] = " ".join(sp.keys)
    props[Prop.UNIQ_KEY] = sp.message_id
    mtype = int(sp.message_type)
    sys_flag = 0
    group = sp.message_group or None
    delivery_ms = timestamp_ms(sp.delivery_timestamp) if sp.HasField("delivery_timestamp") else None
    _check_type_conflicts(mtype, group, delivery_ms)
    if group is not None:
        if 0 < config.max_message_group_size < len(group.encode()):
            raise ProxyError(
                Code.ILLEGAL_MESSAGE_GROUP, f"message group longer than {config.max_message_group_size}"
            )
        props[Prop.SHARDING_KEY] = group
    if delivery_ms is not None:
        if delivery_ms - now_ms > config.max_delay_time_mills:
            raise ProxyError(
                Code.ILLEGAL_DELIVERY_TIME,
                f"delivery timestamp is more than {config.max_delay_time_mills} ms ahead",
            )
        props[Prop.TIMER_DELIVER_MS] = str(delivery_ms)
    if mtype == MessageType.TRANSACTION:
        sys_flag |= SysFlag.TRANSACTION_PREPARED
        props[Prop.TRAN_MSG] = "true"
        props[Prop.PGROUP] = topic  # the Java proxy's producer group for transaction checks: the topic
        recovery = sp.orphaned_transaction_recovery_duration
        if sp.HasField("orphaned_transaction_recovery_duration") and duration_ms(recovery) > 0:
            seconds = min(duration_ms(recovery) // 1000, config.max_transaction_recovery_second)
            props[Prop.CHECK_IMMUNITY_TIME_IN_SECONDS] = str(seconds)
    if sp.trace_context:
        props[TRACE_CONTEXT] = sp.trace_context
    if sp.born_host:
        props[Prop.BORN_HOST] = sp.born_host
    born = timestamp_ms(sp.born_timestamp) if sp.HasField("born_timestamp") else now_ms
    return OutgoingMessage(topic, body, props, sys_flag, born, sp.message_id, mtype, group, delivery_ms)


def _user_properties(user: Mapping[str, str], config: ProxyConfig) -> dict[str, str]:
    if 0 < config.user_property_max_num < len(user):
        raise ProxyError(
            Code.MESSAGE_PROPERTIES_TOO_LARGE, f"more than {config.user_property_max_num} user properties"
        )
    size = 0
    out: dict[str, str] = {}
    for key, value in user.items():
        if key in RESERVED_PROPERTIES:
            raise ProxyError(Code.ILLEGAL_MESSAGE_PROPERTY_KEY, f"property is used by system: {key}")
        if not key or any(c in key + value for c in "\x01\x02"):
            raise ProxyError(
                Code.ILLEGAL_MESSAGE_PROPERTY_KEY, f"property {key!r} is empty or has control chars"
            )
        size += len(key.encode()) + len(value.encode())
        out[key] = value
    if 0 < config.max_user_property_size < size:
        raise ProxyError(
            Code.MESSAGE_PROPERTIES_TOO_LARGE, f"user properties exceed {config.max_user_property_size} bytes"
        )
    return out


def _check_tag(tag: str) -> None:
    if not tag.strip() or "|" in tag or any(c in tag for c in "\x01\x02"):
        raise ProxyError(Code.ILLEGAL_MESSAGE_TAG, f"tag {tag!r} is blank or contains '|' or control chars")


def _check_type_conflicts(mtype: int, group: str | None, delivery_ms: int | None) -> None:
    if mtype == MessageType.FIFO and group is None:
        raise ProxyError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "a FIFO message needs a message group")
    if mtype == MessageType.DELAY and delivery_ms is None:
        raise ProxyError(
            Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "a DELAY message needs a delivery timestamp"
        )
    if group is not None and mtype != MessageType.FIFO:
        raise ProxyError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "only FIFO messages have a message group")
    if delivery_ms is not None and mtype != MessageType.DELAY:
        raise ProxyError(
            Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "only DELAY messages have a delivery timestamp"
        )


# -- delivering ------------------------------------------------------------------------------------------
def message_type_of(props: Mapping[str, str]) -> int:
    """The gRPC message type of a stored message, from its properties (as the Java proxy derives it)."""
    if props.get(Prop.TRAN_MSG) == "true":
        return int(MessageType.TRANSACTION)
    if Prop.DELAY in props or Prop.TIMER_DELIVER_MS in props or Prop.TIMER_DELAY_SEC in props:
        return int(MessageType.DELAY)
    if Prop.SHARDING_KEY in props:
        return int(MessageType.FIFO)
    return int(MessageType.NORMAL)


def record_to_message(
    rec: MessageRecord,
    topic: str,
    *,
    receipt_handle: str | None = None,
    reconsume_times: int | None = None,
    invisible_ms: int | None = None,
) -> Any:
    """A delivered (or transaction-check) ``Message`` from a stored record."""
    body = rec.body
    if rec.sys_flag & SysFlag.COMPRESSED:
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise ProtocolError(f"compressed body of {rec.msg_id} does not inflate: {exc}") from exc
    props = rec.properties
    sp = pb.SystemProperties(
        message_id=rec.msg_id,
        body_digest=pb.Digest(type=pb.DigestType.MD5, checksum=hashlib.md5(body).hexdigest().upper()),
        body_encoding=pb.Encoding.IDENTITY,
        message_type=message_type_of(props),
        born_timestamp=ms_timestamp(rec.born_timestamp),
        born_host=props.get(Prop.BORN_HOST) or rec.born_host[0],
        store_timestamp=ms_timestamp(rec.store_timestamp),
        store_host=f"{rec.store_host[0]}:{rec.store_host[1]}",
        queue_id=rec.queue_id,
        queue_offset=rec.queue_offset,
        delivery_attempt=(rec.reconsume_times if reconsume_times is None else reconsume_times) + 1,
    )
    if (tag := props.get(Prop.TAGS)) is not None:
        sp.tag = tag
    if keys := props.get(Prop.KEYS, "").split():
        sp.keys.extend(keys)
    if (deliver := props.get(Prop.TIMER_DELIVER_MS)) is not None and deliver.lstrip("-").isdigit():
        sp.delivery_timestamp.CopyFrom(ms_timestamp(int(deliver)))
    if (group := props.get(Prop.SHARDING_KEY)) is not None:
        sp.message_group = group
    if receipt_handle is not None:
        sp.receipt_handle = receipt_handle
    if invisible_ms is not None:
        sp.invisible_duration.CopyFrom(ms_duration(invisible_ms))
    if (trace := props.get(TRACE_CONTEXT)) is not None:
        sp.trace_context = trace
    origin_topic, origin_id = props.get(Prop.DLQ_ORIGIN_TOPIC), props.get(Prop.DLQ_ORIGIN_MESSAGE_ID)
    if origin_topic is not None and origin_id is not None:
        sp.dead_letter_queue.CopyFrom(pb.DeadLetterQueue(topic=origin_topic, message_id=origin_id))
    user = {k: v for k, v in props.items() if k not in RESERVED_PROPERTIES}
    return pb.Message(topic=pb.Resource(name=topic), user_properties=user, system_properties=sp, body=body)


def subscription_filter(expr: Any) -> tuple[str, str]:
    """A ``FilterExpression`` as (expression type, expression) the way remoting carries it: ``("TAG", "*")``
    when empty. ProxyError(ILLEGAL_FILTER_EXPRESSION) for an SQL92 filter without an expression."""
    if expr.type == pb.FilterType.SQL:
        if not expr.expression.strip():
            raise ProxyError(Code.ILLEGAL_FILTER_EXPRESSION, "an SQL92 filter needs an expression")
        return "SQL92", expr.expression
    text = expr.expression.strip() or "*"
    return "TAG", text
