"""The pop family (pop-and-storage §1, remoting-protocol §2.8): POP_MESSAGE (200050), ACK_MESSAGE (200051),
BATCH_ACK_MESSAGE (200151), CHANGE_MESSAGE_INVISIBLETIME (200053), PEEK_MESSAGE (200052), NOTIFICATION
(200054) and POLLING_INFO (200055).

A pop or notification with a ``pollTime`` that finds nothing is held (``orbitmq.broker.pop.polling``) until
``bornTime + pollTime`` (at most ``POP_POLL_MS_MAX``): woken by an arrival it covers it looks again, and
holds again if another consumer was faster. A pop that times out answers POLLING_TIMEOUT, one that finds
the table full POLLING_FULL; a notification answers SUCCESS with ``hasMsg`` (and ``pollingFull``).

These handlers parse and validate in upstream's order with upstream's codes and remarks, then call the
:class:`~orbitmq.broker.pop.PopService`. Every pop answer carries the four required response fields
(``popTime``, ``invisibleTime``, ``reviveQid``, ``restNum``): Java decodes them on every answer.
"""

from __future__ import annotations

import logging

from orbitmq.broker.filters import (
    MessageFilter,
    MessageFilterFactory,
    SubscriptionParseError,
    build_subscription,
)
from orbitmq.broker.handlers.context import BrokerContext
from orbitmq.broker.longpoll import WakeReason
from orbitmq.broker.pop import PopService
from orbitmq.broker.pop.polling import POP_POLL_MS_MAX
from orbitmq.broker.pop.popper import PopOutcome, PopQuery
from orbitmq.broker.pop.records import AckMsg
from orbitmq.broker.topics import Perm, TopicConfig
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import (
    MAX_POP_NUMS,
    POP_ORDER_REVIVE_QUEUE,
    AckMessageRequestHeader,
    BatchAckMessageRequestBody,
    ChangeInvisibleTimeRequestHeader,
    ChangeInvisibleTimeResponseHeader,
    ExtraInfo,
    NotificationRequestHeader,
    NotificationResponseHeader,
    PeekMessageRequestHeader,
    PollingInfoRequestHeader,
    PollingInfoResponseHeader,
    PopMessageRequestHeader,
    PopMessageResponseHeader,
    pop_retry_topic_v1,
    real_topic,
)

__all__ = ["PopHandlers"]

log = logging.getLogger("orbitmq.broker.pop")

#: ``isTimeoutTooMuch``: a pop that arrives this much after its born time plus poll time is stale.
POP_TIMEOUT_SLACK_MS = 500
#: A request this close to its deadline is answered instead of held (upstream: 50 ms).
POLL_TIMEOUT_MARGIN_MS = 50


class PopHandlers:
    def __init__(self, ctx: BrokerContext, pop: PopService) -> None:
        self.ctx = ctx
        self.pop = pop
        self.filters = MessageFilterFactory(ctx.config.enable_property_filter)

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.POP_MESSAGE: self.pop_message,
            RequestCode.ACK_MESSAGE: self.ack_message,
            RequestCode.BATCH_ACK_MESSAGE: self.batch_ack_message,
            RequestCode.CHANGE_MESSAGE_INVISIBLETIME: self.change_invisible_time,
            RequestCode.PEEK_MESSAGE: self.peek_message,
            RequestCode.NOTIFICATION: self.notification,
            RequestCode.POLLING_INFO: self.polling_info,
        }

    # -- POP_MESSAGE -------------------------------------------------------------------------------------
    async def pop_message(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        now = self.ctx.now_ms
        empty = PopMessageResponseHeader(now, 0, 0, 0).to_fields()
        try:
            h = PopMessageRequestHeader.from_command(cmd)
            query = self._validate_pop(h, now)
        except ProtocolError as exc:
            return cmd.response(ResponseCode.SYSTEM_ERROR, str(exc), ext_fields=empty)
        except BrokerError as exc:
            return cmd.response(exc.code, exc.remark or None, ext_fields=empty)
        outcome = await self.pop.popper.pop(query)
        code: int = ResponseCode.SUCCESS
        if not outcome.found:
            code = ResponseCode.POLLING_TIMEOUT
            if h.poll_time > 0:
                outcome, code = await self._hold(query, (h.born_time or now) + h.poll_time, conn, outcome)
        fields = outcome.header.to_fields()
        if outcome.found:
            # Retry-topic messages count under the topic asked for, as the consumer sees them.
            nbytes = sum(len(b) for b in outcome.buffers)
            self.ctx.stats.record_out(query.topic, query.group, len(outcome.buffers), nbytes)
            if outcome.header.rest_num > 0:  # backlog left: let a parallel poller drain it too
                self.pop.pop_polling.wake_one((query.topic, query.group, query.queue_id))
            return cmd.response(ResponseCode.SUCCESS, "FOUND", ext_fields=fields, body=outcome.buffers)
        return cmd.response(code, "NO_MESSAGE_IN_QUEUE", ext_fields=fields)

    async def _hold(
        self, query: PopQuery, deadline_ms: int, conn: Connection, outcome: PopOutcome
    ) -> tuple[PopOutcome, int]:
        """Long polling: park until an arrival, pop again; (outcome, code when nothing was found)."""
        polling = self.pop.pop_polling
        key = (query.topic, query.group, query.queue_id)
        deadline_ms = min(deadline_ms, self.ctx.now_ms + POP_POLL_MS_MAX)
        while not outcome.found:
            remaining = deadline_ms - self.ctx.now_ms
            if remaining <= POLL_TIMEOUT_MARGIN_MS:
                return outcome, ResponseCode.POLLING_TIMEOUT
            held = polling.park(key, remaining, conn.id, query.tag_filter, query.record_filter)
            if held is None:
                return outcome, ResponseCode.POLLING_FULL
            if outcome.header.rest_num > 0:  # unread backlog past the filter window: look again now (#8472)
                polling.wake_one(key)
            if await held != WakeReason.MESSAGE:
                return outcome, ResponseCode.POLLING_TIMEOUT
            outcome = await self.pop.popper.pop(query)
        return outcome, ResponseCode.SUCCESS

    def _validate_pop(self, h: PopMessageRequestHeader, now: int) -> PopQuery:
        ip = self.ctx.config.broker_ip1
        born = h.born_time or now
        if now - born - h.poll_time > POP_TIMEOUT_SLACK_MS:
            raise BrokerError(
                ResponseCode.POLLING_TIMEOUT, f"the broker[{ip}] pop message is timeout too much"
            )
        self._check_broker_readable("pop")
        if h.max_msg_nums > MAX_POP_NUMS:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER, f"the broker[{ip}] pop message's num is greater than 32"
            )
        if h.max_msg_nums < 1 or h.invisible_time < 0 or h.poll_time < 0:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER,
                f"maxMsgNums {h.max_msg_nums}, invisibleTime {h.invisible_time} and pollTime {h.poll_time} "
                "must be positive",
            )
        tc = self._readable_topic(h.topic, h.queue_id)
        self._consumable_group(h.consumer_group)
        flt = self._filter(h.consumer_group, h.topic, h.exp, h.exp_type)
        return PopQuery(
            group=h.consumer_group, topic=h.topic, queue_id=h.queue_id, read_queue_nums=tc.read_queue_nums,
            max_nums=h.max_msg_nums, invisible_time=h.invisible_time, init_mode=h.init_mode, order=h.order,
            attempt_id=h.attempt_id, tag_filter=flt.tag_filter, record_filter=flt.record_filter,
        )  # fmt: skip

    # -- shared validation -------------------------------------------------------------------------------
    def _check_broker_readable(self, verb: str) -> None:
        if not self.ctx.config.broker_permission & Perm.READ:
            raise BrokerError(
                ResponseCode.NO_PERMISSION,
                f"the broker[{self.ctx.config.broker_ip1}] {verb} message is forbidden",
            )

    def _readable_topic(self, topic: str, queue_id: int) -> TopicConfig:
        tc = self.ctx.topics.select_topic_config(topic)
        if tc is None:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist, apply first please!")
        if not tc.perm & Perm.READ:
            raise BrokerError(ResponseCode.NO_PERMISSION, f"the topic[{topic}] peeking message is forbidden")
        if queue_id >= tc.read_queue_nums:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER,
                f"queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{tc.read_queue_nums}]",
            )
        return tc

    def _consumable_group(self, group: str) -> None:
        gcfg = self.ctx.subscription_groups.find_subscription_group_config(group)
        if gcfg is None:
            raise BrokerError(
                ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, f"subscription group [{group}] does not exist"
            )
        if not gcfg.consume_enable:
            raise BrokerError(ResponseCode.NO_PERMISSION, f"subscription group no permission, {group}")

    def _filter(self, group: str, topic: str, exp: str | None, exp_type: str | None) -> MessageFilter:
        """The pop's filter (TAG or SQL92, through the filter factory); the topic and its pop retry topic
        are remembered for the group, since a client behind a proxy may never send a heartbeat here."""
        try:
            sub = build_subscription(topic, exp or "*", exp_type)
            flt = self.filters.build(sub)
        except SubscriptionParseError:
            raise BrokerError(
                ResponseCode.SUBSCRIPTION_PARSE_FAILED, "parse the consumer's subscription failed"
            ) from None
        now = self.ctx.now_ms
        consumers = self.ctx.consumers
        consumers.compensate_subscription(group, sub, now)
        retry = build_subscription(pop_retry_topic_v1(topic, group), "*", exp_type)
        consumers.compensate_subscription(group, retry, now)
        return flt

    def _ack_target(
        self, group: str, topic: str, queue_id: int, extra_info: str
    ) -> tuple[ExtraInfo, str, TopicConfig]:
        """Parse the handle and find the topic it refers to (ack and change-invisible validation)."""
        try:
            extra = ExtraInfo.parse(extra_info)
        except ProtocolError as exc:
            raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, f"bad receipt handle: {exc}") from None
        real = extra.real_topic(topic, group)
        tc = self.ctx.topics.select_topic_config(real)
        if tc is None:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"topic[{real}] not exist, apply first please!")
        if not 0 <= queue_id < tc.read_queue_nums:
            raise BrokerError(
                ResponseCode.MESSAGE_ILLEGAL,
                f"queueId[{queue_id}] is illegal, topic:[{real}] topicConfig.readQueueNums:[{tc.read_queue_nums}]",
            )
        return extra, real, tc

    # -- ACK_MESSAGE / BATCH_ACK_MESSAGE -----------------------------------------------------------------
    async def ack_message(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        h = AckMessageRequestHeader.from_command(cmd)
        extra, real, _tc = self._ack_target(h.consumer_group, h.topic, h.queue_id, h.extra_info)
        store = self.ctx.store
        low, high = store.min_offset_in_queue(real, h.queue_id), store.max_offset_in_queue(real, h.queue_id)
        if not low <= h.offset <= high:
            raise BrokerError(
                ResponseCode.NO_MESSAGE,
                f"offset is illegal, key:{real}@{h.queue_id}, commit:{h.offset}, store:{low}~{high}",
            )
        self.pop.stats.ack_requests += 1
        if extra.is_order:
            self.pop.acker.ack_orderly(h.consumer_group, real, h.queue_id, h.offset, extra.pop_time)
        else:
            await self.pop.acker.ack(h.consumer_group, real, h.queue_id, h.offset, extra)
        return cmd.response()

    async def batch_ack_message(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        body = BatchAckMessageRequestBody.decode(cmd.body_bytes())
        if not body.acks:
            raise BrokerError(ResponseCode.NO_MESSAGE, "no ack in the request body")
        self.pop.stats.batch_ack_requests += 1
        store = self.ctx.store
        items: list[tuple[AckMsg, int]] = []
        for ba in body.acks:
            try:
                real = real_topic(ba.topic, ba.consumer_group, ba.retry)
            except ProtocolError as exc:
                raise BrokerError(ResponseCode.MESSAGE_ILLEGAL, str(exc)) from None
            tc = self.ctx.topics.select_topic_config(real)
            if tc is None or not 0 <= ba.queue_id < tc.read_queue_nums:
                log.warning("batch ack for %s q%d skipped: no such queue", real, ba.queue_id)
                continue
            low, high = (
                store.min_offset_in_queue(real, ba.queue_id),
                store.max_offset_in_queue(real, ba.queue_id),
            )
            offsets = tuple(o for o in ba.offsets if low <= o <= high)
            if not offsets:
                continue
            if ba.revive_queue_id == POP_ORDER_REVIVE_QUEUE:
                for offset in offsets:
                    self.pop.acker.ack_orderly(ba.consumer_group, real, ba.queue_id, offset, ba.pop_time)
                continue
            ack = AckMsg(
                start_offset=ba.start_offset, consumer_group=ba.consumer_group, topic=real,
                queue_id=ba.queue_id, pop_time=ba.pop_time,
                broker_name=body.broker_name or self.ctx.config.broker_name, ack_offsets=offsets,
            )  # fmt: skip
            items.append((ack, ba.revive_queue_id))
        await self.pop.acker.batch_ack(items)
        return cmd.response()

    # -- CHANGE_MESSAGE_INVISIBLETIME --------------------------------------------------------------------
    async def change_invisible_time(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        h = ChangeInvisibleTimeRequestHeader.from_command(cmd)
        extra, real, _tc = self._ack_target(h.consumer_group, h.topic, h.queue_id, h.extra_info)
        store = self.ctx.store
        low, high = store.min_offset_in_queue(real, h.queue_id), store.max_offset_in_queue(real, h.queue_id)
        if not low <= h.offset < high:  # strict: upstream #9187
            raise BrokerError(
                ResponseCode.NO_MESSAGE,
                f"offset is illegal, key:{real}@{h.queue_id}, commit:{h.offset}, store:{low}~{high}",
            )
        if h.invisible_time < 0:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, f"invisibleTime {h.invisible_time} is negative")
        if extra.is_order:
            changed = self.pop.acker.change_invisible_orderly(
                h.consumer_group, real, h.queue_id, h.offset, extra, h.invisible_time
            )
        else:
            changed = await self.pop.acker.change_invisible_time(
                h.consumer_group, real, h.queue_id, h.offset, extra, h.invisible_time
            )
        header = ChangeInvisibleTimeResponseHeader(
            changed.pop_time, changed.invisible_time, changed.revive_qid
        )
        return cmd.response(ext_fields=header.to_fields())

    # -- PEEK_MESSAGE ------------------------------------------------------------------------------------
    async def peek_message(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        h = PeekMessageRequestHeader.from_command(cmd)
        self._check_broker_readable("peeking")
        tc = self._readable_topic(h.topic, h.queue_id)
        self._consumable_group(h.consumer_group)
        query = PopQuery(
            group=h.consumer_group, topic=h.topic, queue_id=h.queue_id, read_queue_nums=tc.read_queue_nums,
            max_nums=max(1, min(h.max_msg_nums, MAX_POP_NUMS)), invisible_time=0,
        )  # fmt: skip
        outcome = self.pop.popper.peek(query)
        fields = outcome.header.to_fields()
        if outcome.found:
            return cmd.response(ResponseCode.SUCCESS, "FOUND", ext_fields=fields, body=outcome.buffers)
        return cmd.response(ResponseCode.PULL_NOT_FOUND, "NO_MESSAGE_IN_QUEUE", ext_fields=fields)

    # -- NOTIFICATION / POLLING_INFO ---------------------------------------------------------------------
    def _notification_target(self, topic: str, queue_id: int, group: str) -> TopicConfig:
        """NOTIFICATION / POLLING_INFO validation: like a pop's, but a bad queue id is SYSTEM_ERROR."""
        self._check_broker_readable("peeking")
        tc = self.ctx.topics.select_topic_config(topic)
        if tc is None:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist, apply first please!")
        if not tc.perm & Perm.READ:
            raise BrokerError(ResponseCode.NO_PERMISSION, f"the topic[{topic}] peeking message is forbidden")
        if queue_id >= tc.read_queue_nums:
            raise BrokerError(
                ResponseCode.SYSTEM_ERROR,
                f"queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{tc.read_queue_nums}]",
            )
        self._consumable_group(group)
        return tc

    async def notification(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        """Does the group have something to pop here? Held like a pop when not (the proxy's pop-with-notify
        sends one to every broker and pops where the answer is yes)."""
        h = NotificationRequestHeader.from_command(cmd)
        tc = self._notification_target(h.topic, h.queue_id, h.consumer_group)
        popper = self.pop.popper
        now = self.ctx.now_ms

        def has_msg() -> bool:
            return popper.has_message(
                h.consumer_group,
                h.topic,
                h.queue_id,
                tc.read_queue_nums,
                order=h.order,
                attempt_id=h.attempt_id,
            )

        has, full = has_msg(), False
        if not has and h.poll_time > 0:
            polling = self.pop.notification_polling
            key = (h.topic, h.consumer_group, h.queue_id)
            deadline_ms = min((h.born_time or now) + h.poll_time, now + POP_POLL_MS_MAX)
            while not has:
                remaining = deadline_ms - self.ctx.now_ms
                if remaining <= 0:
                    break
                held = polling.park(key, remaining, conn.id)
                if held is None:
                    full = True
                    break
                if await held != WakeReason.MESSAGE:
                    break
                has = has_msg()
        return cmd.response(ext_fields=NotificationResponseHeader(has, full).to_fields())

    async def polling_info(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        """How many pops of the group are held on the key (``topic@group@queueId``)."""
        h = PollingInfoRequestHeader.from_command(cmd)
        self._notification_target(h.topic, h.queue_id, h.consumer_group)
        num = self.pop.pop_polling.polling_num((h.topic, h.consumer_group, h.queue_id))
        return cmd.response(ext_fields=PollingInfoResponseHeader(num).to_fields())
