"""SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320) — RocketMQ's SendMessageProcessor.

Upstream behaviour reproduced (remoting-protocol §2.4; apache/rocketmq ``AbstractSendMessageProcessor``):

- checks, in order: broker writable, topic name valid (INVALID_PARAMETER), not a broker-only system topic
  (NO_PERMISSION), topic exists or is auto-created from the sender's default topic (TBW102) when
  ``autoCreateTopicEnable`` (else TOPIC_NOT_EXIST), queue id inside the topic (INVALID_PARAMETER; a negative
  id means "pick a random writable queue"), body within ``maxMessageSize`` and properties within 32767
  bytes (MESSAGE_ILLEGAL). OrbitMQ also refuses topics without the WRITE permission (upstream stores them).
- the broker adds ``UNIQ_KEY`` when the producer did not (ali-ons never does), ``CLUSTER``, ``MSG_REGION``
  and ``TRACE_ON``; a send to ``%RETRY%<group>`` whose reconsume count is past the group's maximum (header
  ``l``, else the group's ``retryMaxTimes``) goes to ``%DLQ%<group>`` with ``DELAY=-1``; a ``DELAY`` level
  sends the message through ``SCHEDULE_TOPIC_XXXX`` (:mod:`orbitmq.broker.schedule`); a future
  ``TIMER_DELIVER_MS``/``TIMER_DELAY_SEC``/``TIMER_DELAY_MS`` time parks it in ``rmq_sys_wheel_timer``
  (:mod:`orbitmq.broker.timer`), beyond ``timerMaxDelaySec`` it is MESSAGE_ILLEGAL.
- with ``enableTopicMessageTypeCheck`` (off by default: upstream only checks in its proxy) a message whose
  type (TRANSACTION / DELAY / FIFO / NORMAL, from its properties) is not the topic's ``message.type`` is
  MESSAGE_ILLEGAL "TopicMessageType validate failed, the expected type is X, but actual type is Y".
- every answer, errors included, carries ext fields ``MSG_REGION`` and ``TRACE_ON``; stored answers add
  ``msgId`` (offset message id; comma-joined for a batch), ``queueId``, ``queueOffset``, ``transactionId``.

A ``TRAN_MSG=true`` send is stored as a half message (:mod:`orbitmq.broker.transaction`; refused with
NO_PERMISSION under ``rejectTransactionMessage``); its answer's ``queueOffset`` is the half queue offset
and ``msgId`` the half record's id, which END_TRANSACTION names. A batch with a delay level or a delivery
time is MESSAGE_ILLEGAL (upstream's store says the same of delay levels).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from orbitmq.broker.delay_levels import effective_max_reconsume_times
from orbitmq.broker.handlers.context import BrokerContext, java_fields
from orbitmq.broker.schedule import apply_delay_level, delay_level_of
from orbitmq.broker.stats import message_type
from orbitmq.broker.timer import TimerVerdict, apply_timer, has_timer_properties
from orbitmq.broker.topics import (
    DLQ_GROUP_TOPIC_PREFIX,
    RETRY_GROUP_TOPIC_PREFIX,
    Perm,
    TopicConfig,
    dlq_topic,
    is_not_allowed_send_topic,
    message_type_mismatch,
    message_type_of,
    validate_topic,
)
from orbitmq.broker.transaction import TransactionalMessageService, is_half_message
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.core.limits import PROPERTIES_BYTES_MAX
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import (
    TRANSACTION_MASK,
    Prop,
    SysFlag,
    decode_batch_body,
    decode_properties,
    encode_properties,
    offset_msg_id,
    record_size,
)
from orbitmq.store.api import MessageToStore, PutResult, PutStatus

__all__ = ["SendHandlers", "SendHeader", "put_status_response"]

log = logging.getLogger("orbitmq.broker.send")

#: SEND_MESSAGE_V2's one-letter field names → SEND_MESSAGE's names.
_V2_NAMES = {
    "a": "producerGroup",
    "b": "topic",
    "c": "defaultTopic",
    "d": "defaultTopicQueueNums",
    "e": "queueId",
    "f": "sysFlag",
    "g": "bornTimestamp",
    "h": "flag",
    "i": "properties",
    "j": "reconsumeTimes",
    "k": "unitMode",
    "l": "maxReconsumeTimes",
    "m": "batch",
    "n": "brokerName",
}
_MULTI_TAG = "MULTI_TAG"
_TRANSFER_FLAG = "TRANSFER_FLAG"  # MessageConst.PROPERTY_TRANSFER_FLAG


@dataclass(slots=True)
class SendHeader:
    """``SendMessageRequestHeader`` (the V2 header is the same with one-letter names)."""

    producer_group: str
    topic: str
    default_topic: str
    default_topic_queue_nums: int
    queue_id: int
    sys_flag: int
    born_timestamp: int
    flag: int
    properties: str
    reconsume_times: int
    unit_mode: bool
    max_reconsume_times: int | None
    batch: bool

    @classmethod
    def parse(cls, cmd: RemotingCommand) -> SendHeader:
        if cmd.code != RequestCode.SEND_MESSAGE:
            fields = {_V2_NAMES.get(k, k): v for k, v in cmd.ext_fields.items()}
            cmd = RemotingCommand(code=cmd.code, version=cmd.version, ext_fields=fields)
        return cls(
            producer_group=cmd.str_field("producerGroup"),
            topic=cmd.str_field("topic"),
            default_topic=cmd.str_field("defaultTopic"),
            default_topic_queue_nums=cmd.int_field("defaultTopicQueueNums"),
            queue_id=cmd.int_field("queueId"),
            sys_flag=cmd.int_field("sysFlag"),
            born_timestamp=cmd.int_field("bornTimestamp"),
            flag=cmd.int_field("flag"),
            properties=cmd.ext_fields.get("properties") or "",
            reconsume_times=cmd.int_field("reconsumeTimes", 0),
            unit_mode=cmd.bool_field("unitMode"),
            max_reconsume_times=cmd.opt_int("maxReconsumeTimes"),
            batch=cmd.bool_field("batch"),
        )


def put_status_response(
    cmd: RemotingCommand, result: PutResult, max_message_size: int, ext: dict[str, str]
) -> RemotingCommand | None:
    """The error answer for a put that did not store the message; None when it is stored (PUT_OK or
    FLUSH_DISK_TIMEOUT, which clients count as sent)."""
    status = result.status
    if status in (PutStatus.PUT_OK, PutStatus.FLUSH_DISK_TIMEOUT):
        return None
    if status in (PutStatus.MESSAGE_ILLEGAL, PutStatus.PROPERTIES_SIZE_EXCEEDED):
        remark = (
            f"the message is illegal, maybe msg body or properties length not matched. msg body length "
            f"limit {max_message_size}B, msg properties length limit 32KB. ({result.remark})"
        )
        return cmd.response(ResponseCode.MESSAGE_ILLEGAL, remark, ext_fields=ext)
    # SERVICE_NOT_AVAILABLE (stopped, disk full) and FLUSH_DISK_FAILED (the store now refuses writes):
    # both retriable on another broker, which is what SERVICE_NOT_AVAILABLE tells a client.
    remark = f"service not available now: {status.value} {result.remark}".strip()
    return cmd.response(ResponseCode.SERVICE_NOT_AVAILABLE, remark, ext_fields=ext)


class SendHandlers:
    def __init__(self, ctx: BrokerContext, transactions: TransactionalMessageService | None = None) -> None:
        self.ctx = ctx
        self.transactions = transactions  # half messages go there; None = refused
        self._random = random.Random()

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.SEND_MESSAGE: self.send_message,
            RequestCode.SEND_MESSAGE_V2: self.send_message,
            RequestCode.SEND_BATCH_MESSAGE: self.send_message,
        }

    def _base_ext(self) -> dict[str, str]:
        cfg = self.ctx.config
        return java_fields(MSG_REGION=cfg.region_id, TRACE_ON=cfg.trace_on)

    async def send_message(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        ext = self._base_ext()
        try:
            header = SendHeader.parse(cmd)
            if header.batch or cmd.code == RequestCode.SEND_BATCH_MESSAGE:
                return await self._send_batch(cmd, conn, header, ext)
            return await self._send_one(cmd, conn, header, ext)
        except BrokerError as exc:
            return cmd.response(exc.code, exc.remark or None, ext_fields=ext)
        except ProtocolError as exc:
            return cmd.response(ResponseCode.SYSTEM_ERROR, str(exc), ext_fields=ext)

    # -- checks shared by single and batch sends -------------------------------------------------------
    def _check(self, header: SendHeader, conn: Connection) -> TopicConfig:
        cfg = self.ctx.config
        if not cfg.broker_permission & Perm.WRITE:
            raise BrokerError(
                ResponseCode.NO_PERMISSION, f"the broker[{cfg.broker_ip1}] sending message is forbidden"
            )
        topic = header.topic
        remark = validate_topic(topic)
        if remark is not None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, remark)
        if is_not_allowed_send_topic(topic):
            raise BrokerError(ResponseCode.NO_PERMISSION, f"Sending message to topic[{topic}] is forbidden.")
        tc = self.ctx.topics.select_topic_config(topic)
        if tc is None:
            host, port = conn.remote_addr
            tc = self.ctx.topics.create_topic_in_send(
                topic, header.default_topic, header.default_topic_queue_nums, 0, f"{host}:{port}"
            )
            if tc is None:
                raise BrokerError(
                    ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist, apply first please!"
                )
        if not tc.perm & Perm.WRITE:
            raise BrokerError(ResponseCode.NO_PERMISSION, f"the topic[{topic}] sending message is forbidden")
        if header.queue_id >= tc.queue_nums:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER,
                f"request queueId[{header.queue_id}] is illegal, {tc} Producer: {conn.remote_addr[0]}",
            )
        return tc

    def _queue_id(self, header: SendHeader, tc: TopicConfig) -> int:
        if header.queue_id >= 0:
            return header.queue_id
        if tc.write_queue_nums <= 0:
            raise BrokerError(ResponseCode.NO_PERMISSION, f"the topic[{tc.topic_name}] has no writable queue")
        return self._random.randrange(tc.write_queue_nums)

    def _check_body(self, body: bytes) -> None:
        limit = self.ctx.store.config.max_message_size
        if len(body) > limit:
            raise BrokerError(
                ResponseCode.MESSAGE_ILLEGAL,
                f"the message body size over max value, MAX: {limit}, got {len(body)}",
            )

    def _check_message_type(self, topic: str, tc: TopicConfig, props: dict[str, str]) -> None:
        """With ``enableTopicMessageTypeCheck``: the message's type must be the topic's ``message.type``
        (MESSAGE_ILLEGAL otherwise, as upstream's proxy answers remoting sends). Retry and DLQ topics and
        messages the broker itself forwards (``TRANSFER_FLAG``) are not checked, as upstream."""
        if not self.ctx.config.enable_topic_message_type_check or _TRANSFER_FLAG in props:
            return
        if topic.startswith((RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX)):
            return
        remark = message_type_mismatch(tc.message_type, message_type_of(props))
        if remark is not None:
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, remark)

    def _broker_properties(self, props: dict[str, str]) -> None:
        """What the broker adds to every stored message."""
        cfg = self.ctx.config
        props.pop(Prop.POP_CK, None)  # reserved for the broker's pop machinery
        if not props.get(Prop.UNIQ_KEY):
            props[Prop.UNIQ_KEY] = self.ctx.uniq_ids.next_id()
        props[Prop.MSG_REGION] = cfg.region_id
        props[Prop.TRACE_ON] = "true" if cfg.trace_on else "false"
        props[Prop.CLUSTER] = cfg.broker_cluster_name

    # -- one message -----------------------------------------------------------------------------------
    async def _send_one(
        self, cmd: RemotingCommand, conn: Connection, header: SendHeader, ext: dict[str, str]
    ) -> RemotingCommand:
        tc = self._check(header, conn)
        body = cmd.body_bytes()
        self._check_body(body)
        if len(header.properties.encode()) > PROPERTIES_BYTES_MAX:
            raise BrokerError(
                ResponseCode.MESSAGE_ILLEGAL, f"the properties are longer than {PROPERTIES_BYTES_MAX} bytes"
            )
        queue_id = self._queue_id(header, tc)
        props = decode_properties(header.properties)
        self._check_message_type(header.topic, tc, props)
        msg = MessageToStore(
            topic=header.topic,
            queue_id=queue_id,
            body=body,
            properties=props,
            flag=header.flag,
            sys_flag=header.sys_flag | (SysFlag.MULTI_TAGS if tc.topic_filter_type == _MULTI_TAG else 0),
            born_timestamp=header.born_timestamp,
            born_host=conn.remote_addr,
            reconsume_times=header.reconsume_times,
        )
        if header.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            self._retry_or_dead_letter(cmd, header, msg)
        self._broker_properties(props)
        if is_half_message(props, msg.reconsume_times, delay_level_of(props)):
            result = await self._prepare(msg)
        else:
            self._apply_timer(msg)
            apply_delay_level(msg, self.ctx.delay_levels_ms, self.ctx.now_ms)
            result = await self.ctx.store.put_message(msg)
        error = put_status_response(cmd, result, self.ctx.store.config.max_message_size, ext)
        if error is not None:
            return error
        self.ctx.stats.record_in(msg.topic, message_type(props), 1, len(body))
        code = ResponseCode.SUCCESS if result.ok else ResponseCode.FLUSH_DISK_TIMEOUT
        fields = java_fields(
            msgId=result.msg_id,
            queueId=queue_id,
            queueOffset=result.queue_offset,
            transactionId=props[Prop.UNIQ_KEY],
        )
        return cmd.response(code, ext_fields={**fields, **ext})

    def _retry_or_dead_letter(self, cmd: RemotingCommand, header: SendHeader, msg: MessageToStore) -> None:
        """A send to ``%RETRY%<group>`` past the retry limit (or of an orderly group) goes to the DLQ."""
        group = header.topic[len(RETRY_GROUP_TOPIC_PREFIX) :]
        gcfg = self.ctx.subscription_groups.find_subscription_group_config(group)
        if gcfg is None:
            raise BrokerError(
                ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, f"subscription group not exist, {group}"
            )
        max_times = effective_max_reconsume_times(
            gcfg.retry_max_times, header.max_reconsume_times, cmd.version
        )
        orderly = not self.ctx.locks.is_lock_all_expired(group, self.ctx.now_ms)
        if header.reconsume_times <= max_times and not orderly:
            return
        msg.properties[Prop.DELAY] = "-1"
        msg.topic = dlq_topic(group)
        msg.queue_id = 0
        self.ctx.topics.create_dlq_topic(group)
        log.info("message for %s moved to %s (reconsume %d > %d, orderly %s)", header.topic, msg.topic,
                 header.reconsume_times, max_times, orderly)  # fmt: skip

    def _apply_timer(self, msg: MessageToStore) -> None:
        """Park a message with a future TIMER_* delivery time in the timer topic (orbitmq.broker.timer)."""
        cfg = self.ctx.config
        check = apply_timer(msg, self.ctx.now_ms, cfg.timer_max_delay_sec, enabled=cfg.timer_wheel_enable)
        if check.verdict is TimerVerdict.ILLEGAL:
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, check.remark)
        if check.verdict is TimerVerdict.DISABLED:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, check.remark)

    async def _prepare(self, msg: MessageToStore) -> PutResult:
        """A ``TRAN_MSG=true`` send: stored as a half message (orbitmq.broker.transaction), unless the
        broker rejects transactions (``rejectTransactionMessage``: NO_PERMISSION, upstream's remark)."""
        if self.transactions is None or self.ctx.config.reject_transaction_message:
            raise BrokerError(
                ResponseCode.NO_PERMISSION,
                f"the broker[{self.ctx.config.broker_ip1}] sending transaction message is forbidden",
            )
        return await self.transactions.prepare(msg)

    # -- batches ---------------------------------------------------------------------------------------
    async def _send_batch(
        self, cmd: RemotingCommand, conn: Connection, header: SendHeader, ext: dict[str, str]
    ) -> RemotingCommand:
        tc = self._check(header, conn)
        if header.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            raise BrokerError(
                ResponseCode.MESSAGE_ILLEGAL, f"batch request does not support retry group {header.topic}"
            )
        batch_props = decode_properties(header.properties)
        self._check_message_type(header.topic, tc, batch_props)
        if delay_level_of(batch_props) > 0:
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, "a batch cannot carry a delay level")
        if has_timer_properties(batch_props):
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, "a batch cannot carry a delivery time")
        if header.sys_flag & TRANSACTION_MASK:
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, "a batch cannot hold transactional messages")
        try:
            entries = decode_batch_body(cmd.body_bytes())
        except ProtocolError as exc:
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, f"bad batch body: {exc}") from exc
        if not entries:
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, "empty batch")
        queue_id = self._queue_id(header, tc)
        sys_flag = header.sys_flag | (SysFlag.MULTI_TAGS if tc.topic_filter_type == _MULTI_TAG else 0)
        msgs: list[MessageToStore] = []
        for flag, body, inner_props in entries:
            self._check_body(body)
            if has_timer_properties(inner_props):
                raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, "a batch cannot carry a delivery time")
            props = {**inner_props, **batch_props}
            self._broker_properties(props)
            msgs.append(
                MessageToStore(
                    topic=header.topic,
                    queue_id=queue_id,
                    body=body,
                    properties=props,
                    flag=flag,
                    sys_flag=sys_flag,
                    born_timestamp=header.born_timestamp,
                    born_host=conn.remote_addr,
                    reconsume_times=header.reconsume_times,
                )
            )
        result = await self.ctx.store.put_messages(msgs)
        error = put_status_response(cmd, result, self.ctx.store.config.max_message_size, ext)
        if error is not None:
            return error
        self.ctx.stats.record_in(header.topic, "normal", len(msgs), sum(len(m.body) for m in msgs))
        code = ResponseCode.SUCCESS if result.ok else ResponseCode.FLUSH_DISK_TIMEOUT
        fields = java_fields(
            msgId=",".join(self._batch_msg_ids(msgs, result)),
            queueId=queue_id,
            queueOffset=result.queue_offset,
            transactionId=",".join(m.properties[Prop.UNIQ_KEY] for m in msgs),
        )
        return cmd.response(code, ext_fields={**fields, **ext})

    def _batch_msg_ids(self, msgs: list[MessageToStore], result: PutResult) -> list[str]:
        """Offset message ids of a stored batch: records are contiguous unless a CommitLog segment ended
        inside the batch, in which case the ids are read back from the consume queue."""
        host, port = self.ctx.store_host
        sizes = [
            record_size(len(m.body), len(m.topic.encode()), len(encode_properties(m.properties).encode()))
            for m in msgs
        ]
        if sum(sizes) == result.wrote_bytes:
            ids, phy = [], result.physical_offset
            for size in sizes:
                ids.append(offset_msg_id(host, port, phy))
                phy += size
            return ids
        got = self.ctx.store.get_messages(
            msgs[0].topic, msgs[0].queue_id, result.queue_offset, len(msgs), max_bytes=result.wrote_bytes + 1
        )
        offsets = [int.from_bytes(v[28:36], "big", signed=True) for v in got.buffers]
        if len(offsets) != len(msgs):
            log.warning(
                "batch at %d: %d of %d records readable for ids",
                result.physical_offset,
                len(offsets),
                len(msgs),
            )
            return [result.msg_id]
        return [offset_msg_id(host, port, phy) for phy in offsets]
