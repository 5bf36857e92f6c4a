"""The send side: SendMessage → SEND_MESSAGE_V2 and EndTransaction → END_TRANSACTION.

As in the Java proxy the producer group of every gRPC producer is the topic (the registration that lets
brokers ask the proxy about an orphaned transaction is in :mod:`orbitmq.proxy.registration`).
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

from orbitmq.client.routing import QueueSelector
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.codes import RequestCode, ResponseCode, error_for
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import SysFlag, decode_offset_msg_id, encode_properties, java_string_hash
from orbitmq.proxy.backends.base import Backend
from orbitmq.proxy.convert import OutgoingMessage
from orbitmq.proxy.metadata import DEFAULT_TOPIC, DEFAULT_TOPIC_QUEUE_NUMS, Metadata
from orbitmq.proxy.status import Code, ProxyError

__all__ = ["SendOutcome", "Sender", "TransactionData", "TransactionTable"]

log = logging.getLogger("orbitmq.proxy")

#: Half messages the proxy remembers for EndTransaction (oldest forgotten first).
TRANSACTIONS_MAX = 100_000
_STORED = (ResponseCode.SUCCESS, ResponseCode.FLUSH_DISK_TIMEOUT, ResponseCode.FLUSH_SLAVE_TIMEOUT,
           ResponseCode.SLAVE_NOT_AVAILABLE)  # fmt: skip
_STORE_STATUS_CODES: dict[int, int] = {
    ResponseCode.FLUSH_DISK_TIMEOUT: Code.MASTER_PERSISTENCE_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: Code.SLAVE_PERSISTENCE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: Code.HA_NOT_AVAILABLE,
}


@dataclass(frozen=True, slots=True)
class SendOutcome:
    code: int  # gRPC code of this entry (OK, or a persistence timeout: stored but not as durably as asked)
    message_id: str
    transaction_id: str
    offset: int
    broker_name: str
    queue_id: int


@dataclass(frozen=True, slots=True)
class TransactionData:
    """What END_TRANSACTION needs about a half message (the Java proxy's ``TransactionData``)."""

    topic: str
    broker_name: str
    message_id: str
    transaction_id: str
    commit_log_offset: int
    tran_state_table_offset: int


class TransactionTable:
    """transaction id → half message, bounded (oldest dropped): an EndTransaction for a forgotten one is
    answered INVALID_TRANSACTION_ID, and the broker's check-back resolves it later."""

    def __init__(self, capacity: int = TRANSACTIONS_MAX) -> None:
        self.capacity = capacity
        self._table: collections.OrderedDict[str, TransactionData] = collections.OrderedDict()

    def put(self, data: TransactionData) -> None:
        self._table[data.transaction_id] = data
        self._table.move_to_end(data.transaction_id)
        while len(self._table) > self.capacity:
            self._table.popitem(last=False)

    def pop(self, transaction_id: str) -> TransactionData | None:
        return self._table.pop(transaction_id, None)

    def __len__(self) -> int:
        return len(self._table)


class Sender:
    def __init__(self, backend: Backend, metadata: Metadata, clock: Clock) -> None:
        self.backend, self.metadata, self.clock = backend, metadata, clock
        self.transactions = TransactionTable()
        self._selector = QueueSelector()

    async def send(self, msg: OutgoingMessage, timeout_s: float, *, validate_type: bool) -> SendOutcome:
        route = await self.metadata.route(msg.topic)
        if not route.publish_queues:
            raise ProxyError(Code.FORBIDDEN, f"topic {msg.topic} has no writable queue")
        if msg.message_group is not None:
            # Same group → same queue while the route stays the same (the Java proxy hashes the group too).
            queues = route.publish_queues
            mq = queues[abs(java_string_hash(msg.message_group)) % len(queues)]
        else:
            mq = self._selector.select(route)
        if validate_type:
            types, declared = await self.metadata.topic_types(msg.topic, mq.broker_name)
            if declared and msg.message_type not in types:
                raise ProxyError(
                    Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                    f"topic {msg.topic} does not accept message type {msg.message_type}",
                )
        header = {
            "a": msg.topic if msg.sys_flag & SysFlag.TRANSACTION_PREPARED else _producer_group(msg.topic),
            "b": msg.topic, "c": DEFAULT_TOPIC, "d": str(DEFAULT_TOPIC_QUEUE_NUMS), "e": str(mq.queue_id),
            "f": str(msg.sys_flag), "g": str(msg.born_timestamp_ms), "h": "0",
            "i": encode_properties(msg.properties), "j": "0", "k": "false", "n": mq.broker_name,
        }  # fmt: skip
        cmd = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, msg.body)
        resp = await self.backend.invoke(mq.broker_name, cmd, timeout_s)
        if resp.code not in _STORED:
            raise error_for(resp.code, resp.remark or "")
        fields = resp.ext_fields
        offset = int(fields.get("queueOffset", "-1"))
        queue_id = int(fields.get("queueId", mq.queue_id))
        tx_id = fields.get("transactionId") or msg.message_id
        if msg.sys_flag & SysFlag.TRANSACTION_PREPARED:
            commit_log_offset = _commit_log_offset(fields.get("msgId", ""))
            data = TransactionData(
                msg.topic, mq.broker_name, msg.message_id, tx_id, commit_log_offset, offset
            )
            self.transactions.put(data)
        code = _STORE_STATUS_CODES.get(resp.code, Code.OK)
        return SendOutcome(
            code,
            msg.message_id,
            tx_id if msg.sys_flag & SysFlag.TRANSACTION_PREPARED else "",
            offset,
            mq.broker_name,
            queue_id,
        )

    async def end_transaction(
        self,
        topic: str,
        message_id: str,
        transaction_id: str,
        commit: bool,
        from_check: bool,
        timeout_s: float,
    ) -> None:
        data = self.transactions.pop(transaction_id)
        if data is None or data.topic != topic:
            raise ProxyError(
                Code.INVALID_TRANSACTION_ID, f"unknown transaction id {transaction_id!r} of {topic}"
            )
        header = {
            "topic": topic, "producerGroup": topic, "tranStateTableOffset": str(data.tran_state_table_offset),
            "commitLogOffset": str(data.commit_log_offset),
            "commitOrRollback": str(int(SysFlag.TRANSACTION_COMMIT if commit else SysFlag.TRANSACTION_ROLLBACK)),
            "fromTransactionCheck": "true" if from_check else "false", "msgId": message_id or data.message_id,
            "transactionId": transaction_id,
        }  # fmt: skip
        cmd = RemotingCommand.request(RequestCode.END_TRANSACTION, header)
        resp = await self.backend.invoke(data.broker_name, cmd, timeout_s)
        if resp.code != ResponseCode.SUCCESS:
            self.transactions.put(data)  # the client may try again
            raise error_for(resp.code, resp.remark or "")


def _producer_group(topic: str) -> str:
    return topic


def _commit_log_offset(offset_msg_id: str) -> int:
    try:
        return decode_offset_msg_id(offset_msg_id)[2]
    except ProtocolError:
        return -1
