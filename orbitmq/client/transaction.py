"""Transactional sends: RocketMQ's ``TransactionMQProducer`` and ``TransactionListener``.

``send_message_in_transaction(msg, arg)`` sends ``msg`` as a half message (properties ``TRAN_MSG=true`` and
``PGROUP=<group>``; a delay level is dropped, as the Java client does), runs the listener's
``execute_local_transaction(msg, arg)`` once the broker stored it, and ends the transaction with the result
(END_TRANSACTION, oneway, to the broker that stored it): COMMIT_MESSAGE makes the message visible,
ROLLBACK_MESSAGE drops it, UNKNOW (or an exception) leaves it to the broker's back-check. A store that was
not durable (FLUSH_DISK_TIMEOUT, ...) is rolled back without running the local transaction (Java's rule).

When the broker checks back (CHECK_TRANSACTION_STATE, after ``transactionTimeOut``), the listener's
``check_local_transaction(msg)`` decides and the producer answers with END_TRANSACTION
``fromTransactionCheck=true``. The listener's methods may be plain functions or coroutines.

Example::

    class Orders(TransactionListener):
        async def execute_local_transaction(self, msg, arg):
            await db.insert_order(arg)
            return LocalTransactionState.COMMIT_MESSAGE

        async def check_local_transaction(self, msg):
            return LocalTransactionState.COMMIT_MESSAGE if await db.has_order(msg.keys[0]) else ...

    async with TransactionProducer("PG", "127.0.0.1:9876", Orders()) as producer:
        result = await producer.send_message_in_transaction(Message("Orders", b"..."), order)
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import Message, MessageExt, SendResult, SendStatus, message_ext_from_record
from orbitmq.client.producer import DEFAULT_TOPIC, Producer
from orbitmq.core.errors import BrokerError, ClientError, ProtocolError
from orbitmq.core.service import Service
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.record import MessageRecord, Prop, SysFlag, decode_offset_msg_id

__all__ = ["LocalTransactionState", "TransactionListener", "TransactionProducer", "TransactionSendResult"]

log = logging.getLogger("orbitmq.client.transaction")


class LocalTransactionState(enum.Enum):
    """Java's ``LocalTransactionState``; the value is the END_TRANSACTION ``commitOrRollback``."""

    COMMIT_MESSAGE = int(SysFlag.TRANSACTION_COMMIT)  # 8
    ROLLBACK_MESSAGE = int(SysFlag.TRANSACTION_ROLLBACK)  # 12
    UNKNOW = 0  # (sic, upstream's spelling)


class TransactionListener(Protocol):
    def execute_local_transaction(self, msg: Message, arg: Any) -> Any:
        """Run the local transaction for a stored half message: a LocalTransactionState (or awaitable)."""
        ...

    def check_local_transaction(self, msg: MessageExt) -> Any:
        """The broker asks about an undecided half message: a LocalTransactionState (or awaitable)."""
        ...


@dataclass(frozen=True, slots=True)
class TransactionSendResult:
    """The half message's send result and what the local transaction decided."""

    send_result: SendResult
    local_state: LocalTransactionState

    @property
    def transaction_id(self) -> str:
        return self.send_result.msg_id


async def _decide(call: Any, *args: Any) -> LocalTransactionState:
    """Run a listener method; anything but a LocalTransactionState (an exception, None) is UNKNOW."""
    try:
        state = call(*args)
        if inspect.isawaitable(state):
            state = await state
    except Exception:
        log.exception("transaction listener %s failed: state UNKNOW", getattr(call, "__name__", call))
        return LocalTransactionState.UNKNOW
    return state if isinstance(state, LocalTransactionState) else LocalTransactionState.UNKNOW


class _Heartbeat(Service):
    """Every ``interval_s``, the producer group's heartbeat to every known broker (the Java client's 30-s
    timer): a broker sends back-checks only to producer channels it has heard from lately."""

    def __init__(self, instance: ClientInstance, group: str, interval_s: float) -> None:
        super().__init__(f"transaction producer {group} heartbeat")
        self.instance, self.group, self.interval_s = instance, group, interval_s

    async def beat(self) -> None:
        await self.instance.heartbeat({"producerDataSet": [{"groupName": self.group}], "consumerDataSet": []})

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(self.interval_s)
            if not self.stopping:
                await self.beat()


class TransactionProducer:
    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        listener: TransactionListener,
        *,
        instance: ClientInstance | None = None,
        heartbeat_interval_s: float = 30.0,
        **producer_options: Any,
    ) -> None:
        self.group = group
        self.listener = listener
        self.producer = Producer(group, namesrv_addrs, instance=instance, **producer_options)
        self.instance = self.producer.instance
        self._heartbeat = _Heartbeat(self.instance, group, heartbeat_interval_s)

    async def start(self) -> None:
        """Start sending; the brokers of TBW102's route learn this group at once, so they can check back
        on half messages sent before a restart."""
        self.instance.register_transaction_checker(self.group, self._on_check)
        await self.producer.start()
        try:
            await self.instance.route(DEFAULT_TOPIC)
        except (BrokerError, ClientError) as exc:
            log.info(
                "no route for %s (%s): brokers learn this producer with its first send", DEFAULT_TOPIC, exc
            )
        await self._heartbeat.beat()
        await self._heartbeat.start()

    async def shutdown(self) -> None:
        await self._heartbeat.stop()
        self.instance.unregister_transaction_checker(self.group)
        await self.producer.shutdown()

    async def __aenter__(self) -> TransactionProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def send_message_in_transaction(self, msg: Message, arg: Any = None) -> TransactionSendResult:
        """Send the half message, run the local transaction, end the transaction (see the module doc)."""
        msg.delay_level = 0
        msg.properties.pop(Prop.DELAY, None)
        msg.properties[Prop.TRAN_MSG] = "true"
        msg.properties[Prop.PGROUP] = self.group
        result = await self.producer.send(msg)
        if result.status is SendStatus.SEND_OK:
            state = await _decide(self.listener.execute_local_transaction, msg, arg)
        else:
            state = LocalTransactionState.ROLLBACK_MESSAGE  # stored but not durable: Java rolls back
        try:
            await self._end_transaction(result, state)
        except (ClientError, ProtocolError) as exc:  # the broker's check will settle it
            log.warning("ending transaction %s (%s) failed: %s", result.msg_id, state.name, exc)
        return TransactionSendResult(result, state)

    async def _end_transaction(self, result: SendResult, state: LocalTransactionState) -> None:
        addr = self.instance.broker_addr(result.queue.broker_name)
        fields: dict[str, object] = {
            "producerGroup": self.group,
            "tranStateTableOffset": result.queue_offset,
            "commitLogOffset": decode_offset_msg_id(result.offset_msg_id)[2],
            "commitOrRollback": state.value,
            "fromTransactionCheck": False,
            "msgId": result.msg_id,
            "transactionId": result.msg_id,
            "topic": result.queue.topic,
        }
        await self.instance.oneway(addr, RequestCode.END_TRANSACTION, fields)

    async def _on_check(self, header: dict[str, str], rec: MessageRecord, broker_addr: str) -> None:
        msg = message_ext_from_record(rec, header.get("brokerName", ""))
        state = await _decide(self.listener.check_local_transaction, msg)
        fields: dict[str, object] = {
            "producerGroup": self.group,
            "tranStateTableOffset": header.get("tranStateTableOffset", rec.queue_offset),
            "commitLogOffset": header.get("commitLogOffset", rec.physical_offset),
            "commitOrRollback": state.value,
            "fromTransactionCheck": True,
            "msgId": rec.properties.get(Prop.UNIQ_KEY) or rec.msg_id,
            "transactionId": header.get("transactionId"),
            "topic": header.get("topic"),
        }
        try:
            await self.instance.oneway(broker_addr, RequestCode.END_TRANSACTION, fields)
        except ClientError as exc:
            log.warning("answering the check of %s failed: %s", fields["msgId"], exc)
