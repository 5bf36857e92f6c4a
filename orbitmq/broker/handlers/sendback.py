"""CONSUMER_SEND_MSG_BACK (36): a consumer failed a message; store a retry copy (RocketMQ
``AbstractSendMessageProcessor.consumerSendMsgBack``, remoting-protocol §2.6).

The original is looked up by its CommitLog offset (the record's PHYSICALOFFSET, header ``offset``). The copy
keeps body, flag, properties, sys flag and born timestamp/host, counts one more reconsume, and records
``RETRY_TOPIC`` (the first topic it was consumed from) and ``ORIGIN_MESSAGE_ID`` (the first message id).
It goes to ``%RETRY%<group>`` at delay level ``delayLevel``, or ``3 + reconsumeTimes`` when the consumer
sent 0 (the delay-level service delivers it, :mod:`orbitmq.broker.schedule`). Once the original has been
reconsumed ``maxReconsumeTimes`` times (header value from clients ≥ V3_4_9, else the group's
``retryMaxTimes``), or when the consumer asks with a negative level, it goes to ``%DLQ%<group>`` at once.
"""

from __future__ import annotations

import logging
import random

from orbitmq.broker.delay_levels import effective_max_reconsume_times, is_dead_letter, retry_delay_level
from orbitmq.broker.handlers.context import BrokerContext
from orbitmq.broker.schedule import apply_delay_level
from orbitmq.broker.topics import Perm, dlq_topic
from orbitmq.core.errors import BrokerError
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import MessageRecord, Prop
from orbitmq.store.api import MessageToStore

__all__ = ["SendBackHandlers", "retry_copy"]

log = logging.getLogger("orbitmq.broker.sendback")


def retry_copy(old: MessageRecord, topic: str, queue_id: int, delay_level: int) -> MessageToStore:
    """The message a send-back stores: ``old`` with one more reconsume, its first topic and first id kept,
    and ``DELAY`` set to ``delay_level`` (0 for the dead-letter copy)."""
    props = dict(old.properties)
    props.setdefault(Prop.RETRY_TOPIC, old.topic)
    props[Prop.ORIGIN_MESSAGE_ID] = props.get(Prop.ORIGIN_MESSAGE_ID) or old.offset_msg_id
    props[Prop.WAIT] = "false"
    props[Prop.DELAY] = str(delay_level)
    return MessageToStore.copy_of(
        old,
        topic=topic,
        queue_id=queue_id,
        properties=props,
        reconsume_times=old.reconsume_times + 1,
        prepared_transaction_offset=0,
    )


class SendBackHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx
        self._random = random.Random()

    def table(self) -> dict[int, RequestHandler]:
        return {RequestCode.CONSUMER_SEND_MSG_BACK: self.consumer_send_msg_back}

    async def consumer_send_msg_back(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group = cmd.str_field("group")
        phy = cmd.int_field("offset")
        delay_level = cmd.int_field("delayLevel", 0)
        ctx = self.ctx
        gcfg = ctx.subscription_groups.find_subscription_group_config(group)
        if gcfg is None:
            raise BrokerError(
                ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, f"subscription group not exist, {group}"
            )
        if not ctx.config.broker_permission & Perm.WRITE:
            raise BrokerError(
                ResponseCode.NO_PERMISSION,
                f"the broker[{ctx.config.broker_ip1}] sending message is forbidden",
            )
        if gcfg.retry_queue_nums <= 0:
            return cmd.response()  # the group does not retry: the message is dropped, as upstream
        tc = ctx.topics.create_retry_topic(group, gcfg.retry_queue_nums)
        if not tc.perm & Perm.WRITE:
            raise BrokerError(
                ResponseCode.NO_PERMISSION, f"the topic[{tc.topic_name}] sending message is forbidden"
            )
        old = ctx.store.look_message_by_offset(phy)
        if old is None:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, f"look message by offset failed, {phy}")
        max_times = effective_max_reconsume_times(
            gcfg.retry_max_times, cmd.opt_int("maxReconsumeTimes"), cmd.version
        )
        if is_dead_letter(old.reconsume_times, max_times, delay_level):
            ctx.topics.create_dlq_topic(group)
            msg = retry_copy(old, dlq_topic(group), 0, 0)
            log.info("message %s of group %s goes to %s after %d reconsumes", old.offset_msg_id, group,
                     msg.topic, old.reconsume_times)  # fmt: skip
        else:
            level = retry_delay_level(delay_level, old.reconsume_times)
            msg = retry_copy(old, tc.topic_name, self._random.randrange(gcfg.retry_queue_nums), level)
            apply_delay_level(msg, ctx.delay_levels_ms, ctx.now_ms)
        result = await ctx.store.put_message(msg)
        if not result.ok:
            return cmd.response(ResponseCode.SYSTEM_ERROR, result.status.value)
        if msg.topic == dlq_topic(group):
            ctx.stats.record_dlq(group)
        return cmd.response()
