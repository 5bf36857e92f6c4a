"""Remoting calls of the POP family, client side: POP_MESSAGE, ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME and
NOTIFICATION (remoting-protocol.md §2.8, pop-and-storage.md §1).

Each call takes an ``invoke(cmd, timeout_s)`` already bound to one broker, so the same code serves the
proxy's two backends (a socket, or an in-process broker) and the SDK. A pop answer's receipt handles are
rebuilt from its offset-info strings exactly as the Java client does
(:func:`orbitmq.protocol.pop.receipt_handles`). Expected outcomes are results: "no new message" and
"polling full" are :class:`PopStatus` values; only other codes raise :class:`BrokerError`.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.codes import RequestCode, ResponseCode, error_for
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import (
    AckMessageRequestHeader,
    ChangeInvisibleTimeRequestHeader,
    ChangeInvisibleTimeResponseHeader,
    ExtraInfo,
    NotificationRequestHeader,
    NotificationResponseHeader,
    PopMessageRequestHeader,
    PopMessageResponseHeader,
    PoppedMessage,
    receipt_handles,
)
from orbitmq.protocol.record import MessageRecord, Prop, decode_records

__all__ = [
    "Invoke",
    "PopResult",
    "PopStatus",
    "PoppedRecord",
    "ack_message",
    "change_invisible_time",
    "notification",
    "pop_message",
]

#: Sends one request to one broker and returns its response (any code).
Invoke = Callable[[RemotingCommand, float], Awaitable[RemotingCommand]]


class PopStatus(enum.Enum):
    FOUND = "FOUND"
    NO_NEW_MSG = "NO_NEW_MSG"  # POLLING_TIMEOUT, PULL_NOT_FOUND: nothing within the poll time
    POLLING_FULL = "POLLING_FULL"  # the broker holds too many waiting pops: try again later


@dataclass(frozen=True, slots=True)
class PoppedRecord:
    record: MessageRecord
    #: The broker's receipt handle (``extraInfo`` / POP_CK) of this message.
    extra_info: ExtraInfo
    #: Deliveries before this one: the record's reconsume times, or a FIFO queue's re-pop count.
    reconsume_times: int
    broker_name: str


@dataclass(frozen=True, slots=True)
class PopResult:
    status: PopStatus
    messages: tuple[PoppedRecord, ...] = ()
    #: The broker's estimate of messages left after this pop (0 when unknown).
    rest_num: int = 0


_NOTHING = {ResponseCode.POLLING_TIMEOUT, ResponseCode.PULL_NOT_FOUND, ResponseCode.NO_MESSAGE}


async def pop_message(
    invoke: Invoke, broker_name: str, header: PopMessageRequestHeader, timeout_s: float
) -> PopResult:
    resp = await invoke(RemotingCommand.request(RequestCode.POP_MESSAGE, header.to_fields()), timeout_s)
    if resp.code in _NOTHING:
        return PopResult(PopStatus.NO_NEW_MSG)
    if resp.code == ResponseCode.POLLING_FULL:
        return PopResult(PopStatus.POLLING_FULL)
    if resp.code != ResponseCode.SUCCESS:
        raise error_for(resp.code, resp.remark or "")
    rh = PopMessageResponseHeader.from_command(resp)
    records = decode_records(resp.body_bytes())
    if not records:
        return PopResult(PopStatus.NO_NEW_MSG, rest_num=rh.rest_num)
    popped = [
        PoppedMessage(r.topic, r.queue_id, r.queue_offset, r.properties.get(Prop.POP_CK)) for r in records
    ]
    handles = receipt_handles(rh, popped, broker_name)
    out = []
    for rec, (handle, count) in zip(records, handles, strict=True):
        info = ExtraInfo.parse(handle)
        if info.queue_offset is None:
            raise ProtocolError(f"receipt handle without a queue offset: {handle!r}")
        out.append(PoppedRecord(rec, info, count if count >= 0 else rec.reconsume_times, broker_name))
    return PopResult(PopStatus.FOUND, tuple(out), rh.rest_num)


async def ack_message(invoke: Invoke, group: str, topic: str, info: ExtraInfo, timeout_s: float) -> None:
    """ACK_MESSAGE for one handle; ``topic`` is the original topic (the handle's kind names a retry topic)."""
    assert info.queue_offset is not None
    header = AckMessageRequestHeader(group, topic, info.queue_id, info.encode(), info.queue_offset)
    resp = await invoke(RemotingCommand.request(RequestCode.ACK_MESSAGE, header.to_fields()), timeout_s)
    if resp.code != ResponseCode.SUCCESS:
        raise error_for(resp.code, resp.remark or "")


async def change_invisible_time(
    invoke: Invoke, group: str, topic: str, info: ExtraInfo, invisible_ms: int, timeout_s: float
) -> ExtraInfo:
    """CHANGE_MESSAGE_INVISIBLETIME; returns the new handle (the old one must not be used afterwards)."""
    assert info.queue_offset is not None
    header = ChangeInvisibleTimeRequestHeader(
        group, topic, info.queue_id, info.encode(), info.queue_offset, invisible_ms
    )
    cmd = RemotingCommand.request(RequestCode.CHANGE_MESSAGE_INVISIBLETIME, header.to_fields())
    resp = await invoke(cmd, timeout_s)
    if resp.code != ResponseCode.SUCCESS:
        raise error_for(resp.code, resp.remark or "")
    return ChangeInvisibleTimeResponseHeader.from_command(resp).new_handle(info, info.queue_offset)


async def notification(
    invoke: Invoke, header: NotificationRequestHeader, timeout_s: float
) -> NotificationResponseHeader:
    """NOTIFICATION: does the group have messages to pop here (waiting up to the poll time)?"""
    resp = await invoke(RemotingCommand.request(RequestCode.NOTIFICATION, header.to_fields()), timeout_s)
    if resp.code == ResponseCode.POLLING_FULL:
        return NotificationResponseHeader(False, True)
    if resp.code in _NOTHING:
        return NotificationResponseHeader(False, False)
    if resp.code != ResponseCode.SUCCESS:
        raise error_for(resp.code, resp.remark or "")
    return NotificationResponseHeader.from_command(resp)
