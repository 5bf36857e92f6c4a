"""Transactional messages on the wire and in the log: pure functions over records and properties.

Upstream facts (``TransactionalMessageBridge``, ``TransactionalMessageUtil``, ``EndTransactionProcessor``):

- a send whose ``TRAN_MSG`` property is ``true`` is a *half* message (unless it is a pre-4.6.1 client's
  retry: reconsume times > 0 with a delay level). It is stored in ``RMQ_SYS_TRANS_HALF_TOPIC`` queue 0
  with ``REAL_TOPIC``, ``REAL_QID`` and ``__transactionId__`` (= its ``UNIQ_KEY``), and its transaction
  bits reset to "not a transaction" so that the half queue indexes it; consumers never see that topic.
- commit re-stores it in its real topic and queue, transaction bits = COMMIT (8), ``TRAN_MSG`` and
  ``REAL_*`` removed, the PREPARED_TRANSACTION_OFFSET field = the half record's CommitLog offset;
- an *op* record in ``RMQ_SYS_TRANS_OP_HALF_TOPIC`` (tag ``d``, body = half queue offsets, each followed by
  a comma) says that half offsets are done (committed, rolled back, or superseded);
- a back-check re-stores the half message at the end of the half queue with ``TRANSACTION_CHECK_TIMES``
  incremented (1 the first time); at ``transactionCheckMax`` the message goes to
  ``TRANS_CHECK_MAX_TIME_TOPIC`` queue 0 instead, its properties kept;
- the first check waits ``transactionTimeOut`` after the message's born time, or its
  ``CHECK_IMMUNITY_TIME_IN_SECONDS`` when that is longer.
"""

from __future__ import annotations

from typing import Final

from orbitmq.broker.topics import TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC
from orbitmq.protocol.record import TRANSACTION_MASK, MessageRecord, Prop, SysFlag, encode_record
from orbitmq.store.api import MessageToStore

__all__ = [
    "CID_SYS_RMQ_TRANS",
    "OP_REMOVE_TAG",
    "check_body",
    "check_times",
    "committed_message",
    "discarded_message",
    "immunity_ms",
    "is_half_message",
    "op_body",
    "op_message",
    "parse_op_body",
    "renewed_half",
    "to_half",
    "with_transaction_value",
]

#: The system group whose consumer offsets are the check progress on the half and op queues.
CID_SYS_RMQ_TRANS: Final = "CID_RMQ_SYS_TRANS"
OP_REMOVE_TAG: Final = "d"
_NOT_TYPE = 0


def with_transaction_value(sys_flag: int, value: int) -> int:
    """``MessageSysFlag.resetTransactionValue``: replace bits 2-3."""
    return (sys_flag & ~TRANSACTION_MASK) | value


def is_half_message(props: dict[str, str], reconsume_times: int, delay_level: int) -> bool:
    """Upstream's test: ``TRAN_MSG=true``, except a pre-4.6.1 client's retry (reconsumed, with a level)."""
    return props.get(Prop.TRAN_MSG, "").lower() == "true" and not (reconsume_times > 0 and delay_level > 0)


def to_half(msg: MessageToStore) -> MessageToStore:
    """Turn ``msg`` (in place) into its half message in ``RMQ_SYS_TRANS_HALF_TOPIC`` queue 0."""
    props = msg.properties
    uniq = props.get(Prop.UNIQ_KEY)
    if uniq:
        props[Prop.TRANSACTION_ID] = uniq
    props[Prop.REAL_TOPIC] = msg.topic
    props[Prop.REAL_QID] = str(msg.queue_id)
    msg.sys_flag = with_transaction_value(msg.sys_flag, _NOT_TYPE)
    msg.topic = TRANS_HALF_TOPIC
    msg.queue_id = 0
    msg.tags_code = None
    return msg


def committed_message(rec: MessageRecord) -> MessageToStore | None:
    """The message to store in the real topic when the half record ``rec`` is committed; None when the
    half record names no real queue."""
    props = dict(rec.properties)
    topic = props.pop(Prop.REAL_TOPIC, None)
    try:
        queue_id = int(props.pop(Prop.REAL_QID, ""))
    except ValueError:
        return None
    if not topic or queue_id < 0:
        return None
    props.pop(Prop.TRAN_MSG, None)
    msg = MessageToStore.copy_of(
        rec, topic=topic, queue_id=queue_id, properties=props, prepared_transaction_offset=rec.physical_offset
    )
    msg.sys_flag = with_transaction_value(rec.sys_flag, int(SysFlag.TRANSACTION_COMMIT))
    return msg


def check_times(props: dict[str, str]) -> int:
    """Back-checks already sent for this half message (0 for a fresh one)."""
    try:
        return max(0, int(props.get(Prop.TRANSACTION_CHECK_TIMES, "0")))
    except ValueError:
        return 0


def renewed_half(rec: MessageRecord) -> MessageToStore:
    """The copy put back at the end of the half queue for a back-check, its check count incremented."""
    props = dict(rec.properties)
    props[Prop.TRANSACTION_CHECK_TIMES] = str(check_times(props) + 1)
    return MessageToStore.copy_of(rec, topic=TRANS_HALF_TOPIC, queue_id=0, properties=props)


def discarded_message(rec: MessageRecord) -> MessageToStore:
    """The copy kept in ``TRANS_CHECK_MAX_TIME_TOPIC`` queue 0 when the checks ran out."""
    return MessageToStore.copy_of(
        rec, topic=TRANS_CHECK_MAX_TIME_TOPIC, queue_id=0, properties=dict(rec.properties)
    )


def immunity_ms(props: dict[str, str], transaction_timeout_ms: int) -> int:
    """Wait before the first check: ``CHECK_IMMUNITY_TIME_IN_SECONDS`` if longer than the timeout."""
    try:
        custom = int(props.get(Prop.CHECK_IMMUNITY_TIME_IN_SECONDS, "0")) * 1000
    except ValueError:
        custom = 0
    return max(custom, transaction_timeout_ms)


def op_body(half_offsets: list[int]) -> bytes:
    return "".join(f"{o}," for o in half_offsets).encode()


def parse_op_body(body: bytes) -> list[int]:
    """The half queue offsets an op record names; junk between commas is ignored (upstream logs it)."""
    out: list[int] = []
    for part in body.decode(errors="replace").split(","):
        part = part.strip()
        if part.lstrip("-").isdigit():
            out.append(int(part))
    return out


def op_message(half_offsets: list[int], born_ms: int, host: tuple[str, int]) -> MessageToStore:
    return MessageToStore(
        topic=TRANS_OP_HALF_TOPIC,
        queue_id=0,
        body=op_body(half_offsets),
        properties={Prop.TAGS: OP_REMOVE_TAG, Prop.WAIT: "false"},
        born_timestamp=born_ms,
        born_host=host,
    )


def check_body(rec: MessageRecord) -> bytes:
    """CHECK_TRANSACTION_STATE's body: the half record encoded as a message of its real topic and queue."""
    props = rec.properties
    try:
        queue_id = int(props.get(Prop.REAL_QID, str(rec.queue_id)))
    except ValueError:
        queue_id = rec.queue_id
    return encode_record(
        topic=props.get(Prop.REAL_TOPIC, rec.topic),
        body=rec.body,
        properties=props,
        queue_id=queue_id,
        flag=rec.flag,
        queue_offset=rec.queue_offset,
        physical_offset=rec.physical_offset,
        sys_flag=rec.sys_flag,
        born_timestamp=rec.born_timestamp,
        born_host=rec.born_host,
        store_timestamp=rec.store_timestamp,
        store_host=rec.store_host,
        reconsume_times=rec.reconsume_times,
        prepared_transaction_offset=rec.prepared_transaction_offset,
    )
