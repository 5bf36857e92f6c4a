"""PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361) — RocketMQ's PullMessageProcessor (remoting-protocol §6).

One pull is processed in two passes at most. The first pass validates, reads the queue and, when the
SUSPEND flag (0x2) is set and nothing new exists (PULL_NOT_FOUND), parks the request in the long-poll table
(:mod:`orbitmq.broker.longpoll`) for ``suspendTimeoutMillis`` (at most ``HOLD_MS_MAX``; with long polling
off, ``shortPollingTimeMills``). When a matching message arrives or the time is up, the second pass reads
again without suspending and answers. Only the first pass stores the piggy-backed commit (flag 0x1).

Store status → answer (``nextBeginOffset`` is the store's):

    FOUND                                      SUCCESS, body = the records (the store's buffers, not copied)
    NO_MATCHED_MESSAGE, MESSAGE_WAS_REMOVING   PULL_RETRY_IMMEDIATELY
    NO_MESSAGE_IN_QUEUE, NO_MATCHED_LOGIC_QUEUE  PULL_NOT_FOUND for offset 0, else PULL_OFFSET_MOVED (next 0)
    OFFSET_OVERFLOW_ONE, OFFSET_FOUND_NULL     PULL_NOT_FOUND (long-polled)
    OFFSET_OVERFLOW_BADLY, OFFSET_TOO_SMALL    PULL_OFFSET_MOVED (next = max / min offset)

A pending server-side reset of the queue (INVOKE_BROKER_TO_RESET_OFFSET, :mod:`orbitmq.broker.offsets`) is
consumed by the next pull of the group on that queue, in either pass: it is answered PULL_OFFSET_MOVED with
``nextBeginOffset`` = the reset offset (remark ``OFFSET_RESET``), unless the pull already asks for exactly
that offset, which is then read normally. That pull's piggy-backed commit is not stored: it predates the reset.

Every answer, errors included, carries ``suggestWhichBrokerId``, ``nextBeginOffset``, ``minOffset`` and
``maxOffset`` (ali-ons reads them unconditionally); the remark is the store status name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orbitmq.broker.filters import (
    MessageFilter,
    MessageFilterFactory,
    SubscriptionData,
    build_subscription,
)
from orbitmq.broker.handlers.context import BrokerContext, java_fields
from orbitmq.broker.heartbeat import MessageModel
from orbitmq.broker.subscription_groups import SubscriptionGroupConfig
from orbitmq.broker.topics import Perm, TopicConfig
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.core.limits import PULL_BATCH_BYTES_MAX, PULL_BATCH_COUNT_MAX
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.store.api import GetResult, GetStatus, RecordFilter, TagFilter

__all__ = ["PullHandlers", "PullRequestHeader", "pull_response_code"]

log = logging.getLogger("orbitmq.broker.pull")

FLAG_COMMIT_OFFSET = 0x1
FLAG_SUSPEND = 0x2
FLAG_SUBSCRIPTION = 0x4


@dataclass(slots=True, frozen=True)
class PullRequestHeader:
    consumer_group: str
    topic: str
    queue_id: int
    queue_offset: int
    max_msg_nums: int
    sys_flag: int
    commit_offset: int
    suspend_timeout_millis: int
    subscription: str | None
    sub_version: int
    expression_type: str | None
    max_msg_bytes: int | None

    @classmethod
    def parse(cls, cmd: RemotingCommand) -> PullRequestHeader:
        return cls(
            consumer_group=cmd.str_field("consumerGroup"),
            topic=cmd.str_field("topic"),
            queue_id=cmd.int_field("queueId"),
            queue_offset=cmd.int_field("queueOffset"),
            max_msg_nums=cmd.int_field("maxMsgNums"),
            sys_flag=cmd.int_field("sysFlag"),
            commit_offset=cmd.int_field("commitOffset", 0),
            suspend_timeout_millis=cmd.int_field("suspendTimeoutMillis", 0),
            subscription=cmd.opt_str("subscription"),
            sub_version=cmd.int_field("subVersion", 0),
            expression_type=cmd.opt_str("expressionType"),
            max_msg_bytes=cmd.opt_int("maxMsgBytes"),
        )

    def has(self, flag: int) -> bool:
        return bool(self.sys_flag & flag)


def pull_response_code(status: GetStatus, request_offset: int) -> int:
    """The response code of a pull whose store read ended with ``status`` (Java's composeResponseHeader)."""
    if status is GetStatus.FOUND:
        return ResponseCode.SUCCESS
    if status in (GetStatus.NO_MATCHED_MESSAGE, GetStatus.MESSAGE_WAS_REMOVING):
        return ResponseCode.PULL_RETRY_IMMEDIATELY
    if status in (GetStatus.NO_MESSAGE_IN_QUEUE, GetStatus.NO_MATCHED_LOGIC_QUEUE):
        return ResponseCode.PULL_OFFSET_MOVED if request_offset != 0 else ResponseCode.PULL_NOT_FOUND
    if status in (GetStatus.OFFSET_OVERFLOW_ONE, GetStatus.OFFSET_FOUND_NULL):
        return ResponseCode.PULL_NOT_FOUND
    return ResponseCode.PULL_OFFSET_MOVED  # OFFSET_OVERFLOW_BADLY, OFFSET_TOO_SMALL


@dataclass(slots=True)
class _Plan:
    """A validated pull: what to read and how to filter."""

    header: PullRequestHeader
    topic_config: TopicConfig
    group_config: SubscriptionGroupConfig
    tag_filter: TagFilter | None
    record_filter: RecordFilter | None


class PullHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx
        self.filters = MessageFilterFactory(ctx.config.enable_property_filter)

    def table(self) -> dict[int, RequestHandler]:
        return {RequestCode.PULL_MESSAGE: self.pull_message, RequestCode.LITE_PULL_MESSAGE: self.pull_message}

    async def pull_message(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        try:
            header = PullRequestHeader.parse(cmd)
        except ProtocolError as exc:  # still answer with the four fields: clients read them unconditionally
            ext = java_fields(suggestWhichBrokerId=0, nextBeginOffset=0, minOffset=0, maxOffset=0)
            return cmd.response(ResponseCode.SYSTEM_ERROR, str(exc), ext_fields=ext)
        try:
            plan = self._validate(header)
        except BrokerError as exc:
            return cmd.response(exc.code, exc.remark or None, ext_fields=self._position(header))
        reset = self._take_reset(header)
        if reset is not None and reset != header.queue_offset:
            return self._reset_answer(cmd, plan, reset)
        result = self._read(plan)
        code = pull_response_code(result.status, header.queue_offset)
        self._commit(plan, conn, result, store_commit=reset is None)
        if code == ResponseCode.PULL_NOT_FOUND and header.has(FLAG_SUSPEND):
            cfg = self.ctx.config
            hold_ms = (
                header.suspend_timeout_millis if cfg.long_polling_enable else cfg.short_polling_time_mills
            )
            woken = self.ctx.long_polling.hold(
                header.topic, header.queue_id, header.queue_offset, hold_ms, conn.id,
                plan.tag_filter, plan.record_filter,
            )  # fmt: skip
            if woken is not None:
                await woken
                reset = self._take_reset(header)
                if reset is not None and reset != header.queue_offset:
                    return self._reset_answer(cmd, plan, reset)
                result = self._read(plan)
                code = pull_response_code(result.status, header.queue_offset)
        return self._answer(cmd, plan, result, code)

    # -- first pass: validation (Java's order and remarks) ---------------------------------------------
    def _validate(self, h: PullRequestHeader) -> _Plan:
        cfg = self.ctx.config
        if not cfg.broker_permission & Perm.READ:
            raise BrokerError(
                ResponseCode.NO_PERMISSION, f"the broker[{cfg.broker_ip1}] pulling message is forbidden"
            )
        gcfg = self.ctx.subscription_groups.find_subscription_group_config(h.consumer_group)
        if gcfg is None:
            raise BrokerError(
                ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
                f"subscription group [{h.consumer_group}] does not exist",
            )
        if not gcfg.consume_enable:
            raise BrokerError(
                ResponseCode.NO_PERMISSION, f"subscription group no permission, {h.consumer_group}"
            )
        tc = self.ctx.topics.select_topic_config(h.topic)
        if tc is None:
            raise BrokerError(
                ResponseCode.TOPIC_NOT_EXIST, f"topic[{h.topic}] not exist, apply first please!"
            )
        if not tc.perm & Perm.READ:
            raise BrokerError(
                ResponseCode.NO_PERMISSION, f"the topic[{h.topic}] pulling message is forbidden"
            )
        if h.queue_id < 0 or h.queue_id >= tc.read_queue_nums:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER,
                f"queueId[{h.queue_id}] is illegal, topic:[{h.topic}] "
                f"topicConfig.readQueueNums:[{tc.read_queue_nums}]",
            )
        sub = self._subscription(h, gcfg)
        flt = self._filter(h, sub)
        return _Plan(h, tc, gcfg, flt.tag_filter, flt.record_filter)

    def _filter(self, h: PullRequestHeader, sub: SubscriptionData) -> MessageFilter:
        """The subscription's filter. A heartbeat's expression that does not compile has no filter data
        upstream (it is only logged at registration): FILTER_DATA_NOT_EXIST, before the SQL92 switch."""
        if not h.has(FLAG_SUBSCRIPTION):
            error = self.filters.compile_error(sub)
            if error is not None:
                raise BrokerError(
                    ResponseCode.FILTER_DATA_NOT_EXIST,
                    f"The broker's consumer filter data is not exist!Your expression may be wrong! ({error})",
                )
        return self.filters.build(sub)

    def _subscription(self, h: PullRequestHeader, gcfg: SubscriptionGroupConfig) -> SubscriptionData:
        consumers = self.ctx.consumers
        if h.has(FLAG_SUBSCRIPTION):
            sub = build_subscription(h.topic, h.subscription, h.expression_type, h.sub_version)
            consumers.compensate_subscription(h.consumer_group, sub, self.ctx.now_ms)
            return sub
        info = consumers.group_info(h.consumer_group)
        if info is None:
            raise BrokerError(ResponseCode.SUBSCRIPTION_NOT_EXIST, "the consumer's group info not exist")
        if not gcfg.consume_broadcast_enable and info.message_model is MessageModel.BROADCASTING:
            raise BrokerError(
                ResponseCode.NO_PERMISSION,
                f"the consumer group[{h.consumer_group}] can not consume by broadcast way",
            )
        found = consumers.subscription(h.consumer_group, h.topic, include_compensated=False)
        if found is None:
            raise BrokerError(ResponseCode.SUBSCRIPTION_NOT_EXIST, "the consumer's subscription not exist")
        if found.sub_version < h.sub_version:
            raise BrokerError(ResponseCode.SUBSCRIPTION_NOT_LATEST, "the consumer's subscription not latest")
        return found

    # -- reading, committing, answering ----------------------------------------------------------------
    def _read(self, plan: _Plan) -> GetResult:
        h = plan.header
        max_count = max(1, min(h.max_msg_nums, PULL_BATCH_COUNT_MAX))
        max_bytes = (
            min(h.max_msg_bytes, PULL_BATCH_BYTES_MAX) if h.max_msg_bytes and h.max_msg_bytes > 0 else None
        )
        return self.ctx.store.get_messages(
            h.topic,
            h.queue_id,
            h.queue_offset,
            max_count,
            max_bytes=max_bytes,
            tag_filter=plan.tag_filter,
            record_filter=plan.record_filter,
        )

    def _take_reset(self, h: PullRequestHeader) -> int | None:
        return self.ctx.offsets.query_then_erase_reset_offset(h.consumer_group, h.topic, h.queue_id)

    def _reset_answer(self, cmd: RemotingCommand, plan: _Plan, offset: int) -> RemotingCommand:
        """PULL_OFFSET_MOVED to a reset's offset (upstream's OFFSET_RESET status); nothing is read."""
        h = plan.header
        self.ctx.offsets.commit_pull_offset(h.consumer_group, h.topic, h.queue_id, offset)
        log.info("pull of %s@%s q%d at %d: reset to %d", h.topic, h.consumer_group, h.queue_id,
                 h.queue_offset, offset)  # fmt: skip
        store = self.ctx.store
        ext = java_fields(
            suggestWhichBrokerId=0,
            nextBeginOffset=offset,
            minOffset=store.min_offset_in_queue(h.topic, h.queue_id),
            maxOffset=store.max_offset_in_queue(h.topic, h.queue_id),
            topicSysFlag=plan.topic_config.topic_sys_flag,
            groupSysFlag=plan.group_config.group_sys_flag,
        )
        return cmd.response(ResponseCode.PULL_OFFSET_MOVED, "OFFSET_RESET", ext_fields=ext)

    def _commit(self, plan: _Plan, conn: Connection, result: GetResult, *, store_commit: bool = True) -> None:
        h = plan.header
        offsets = self.ctx.offsets
        offsets.commit_pull_offset(h.consumer_group, h.topic, h.queue_id, result.next_begin_offset)
        if store_commit and h.has(FLAG_COMMIT_OFFSET) and h.commit_offset >= 0:
            host, port = conn.remote_addr
            offsets.commit_offset(h.consumer_group, h.topic, h.queue_id, h.commit_offset, f"{host}:{port}")

    def _answer(self, cmd: RemotingCommand, plan: _Plan, result: GetResult, code: int) -> RemotingCommand:
        ext = java_fields(
            suggestWhichBrokerId=0,
            nextBeginOffset=result.next_begin_offset,
            minOffset=result.min_offset,
            maxOffset=result.max_offset,
            topicSysFlag=plan.topic_config.topic_sys_flag,
            groupSysFlag=plan.group_config.group_sys_flag,
        )
        body = list(result.buffers) if code == ResponseCode.SUCCESS else b""
        if body and self.ctx.rates is not None:
            self.ctx.rates.get.add(result.message_count)
        if body:
            h = plan.header
            self.ctx.stats.record_out(h.topic, h.consumer_group, len(body), result.total_size)
        return cmd.response(code, result.status.value, ext_fields=ext, body=body)

    def _position(self, h: PullRequestHeader) -> dict[str, str]:
        """The four required fields for an error answer: where the queue stands, nothing moved."""
        store = self.ctx.store
        return java_fields(
            suggestWhichBrokerId=0,
            nextBeginOffset=h.queue_offset,
            minOffset=store.min_offset_in_queue(h.topic, h.queue_id),
            maxOffset=store.max_offset_in_queue(h.topic, h.queue_id),
        )
