"""INVOKE_BROKER_TO_RESET_OFFSET (222): move a consumer group's offsets on a topic, by time or to an offset.

Header (``ResetOffsetRequestHeader``): ``group``, ``topic``, ``queueId`` (-1 or absent = every queue),
``offset`` (absent or -1 = none), ``timestamp`` (ms; negative = the queue's max offset), ``isForce``.
Per queue the target is the explicit offset, which must lie in ``[minOffset, maxOffset]``
(INVALID_PARAMETER otherwise, nothing changed), or the first message stored at or after ``timestamp``
(the first of many sharing that millisecond, upstream #5445; the max offset when none is that new).
Unlike upstream, an explicit offset with ``queueId`` -1 applies to every queue instead of being ignored.

The topic must exist (TOPIC_NOT_EXIST); the group's config must exist or be auto-creatable
(SUBSCRIPTION_GROUP_NOT_EXIST), but the group need not ever have consumed the topic: the new offsets are
written to the offset table and persisted either way (pop-and-storage S3, upstream #9150).

``useServerSideResetOffset=true`` (default): each queue's reset is also pending until the group's next
pull or pop of that queue picks it up (:mod:`orbitmq.broker.offsets`); held pulls of the queue are woken so
online consumers hear of it at once (pulls of other groups on that queue get an early empty answer and
simply pull again). ``false``: the 4.x way, RESET_CONSUMER_CLIENT_OFFSET (220) is pushed to
every online consumer of the group (header ``topic``, ``group``, ``timestamp``, ``isForce``; body
``ResetOffsetBody``), and without ``isForce`` a queue only moves back, never forward (upstream's rule).
Upstream answers CONSUMER_NOT_ONLINE there when nobody is online; here the offsets are stored anyway.

The answer's body is ``ResetOffsetBody``: ``{"offsetTable": {<MessageQueue>: offset}}`` (object keys).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from orbitmq.broker.handlers.admin import mq_keyed_json
from orbitmq.broker.handlers.context import BrokerContext
from orbitmq.broker.locks import MessageQueue
from orbitmq.core.errors import BrokerError
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["ResetHandlers", "reset_targets"]

log = logging.getLogger("orbitmq.broker.reset")


def reset_targets(
    queue_ids: Iterable[int],
    offset: int | None,
    timestamp: int,
    bounds: Callable[[int], tuple[int, int]],
    by_time: Callable[[int, int], int],
) -> dict[int, int]:
    """Queue id → new offset. ``bounds(q)`` is the queue's (min, max) offset, ``by_time(q, ts)`` the first
    offset stored at or after ``ts``. BrokerError(INVALID_PARAMETER) when an explicit offset is out of range."""
    out: dict[int, int] = {}
    for q in queue_ids:
        low, high = bounds(q)
        if offset is not None:
            if not low <= offset <= high:
                raise BrokerError(
                    ResponseCode.INVALID_PARAMETER,
                    f"Target offset {offset} not in consume queue range [{low}-{high}] of queue {q}",
                )
            out[q] = offset
        elif timestamp < 0:
            out[q] = high
        else:
            out[q] = min(max(by_time(q, timestamp), low), high)
    return out


class ResetHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx

    def table(self) -> dict[int, RequestHandler]:
        return {RequestCode.INVOKE_BROKER_TO_RESET_OFFSET: self.reset_offset}

    async def reset_offset(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group, topic = cmd.str_field("group"), cmd.str_field("topic")
        queue_id = cmd.int_field("queueId", -1)
        offset = cmd.opt_int("offset")
        if offset is not None and offset < 0:
            offset = None  # upstream's "no offset" is -1
        timestamp = cmd.int_field("timestamp", -1)
        force = cmd.bool_field("isForce")
        tc = self.ctx.topics.select_topic_config(topic)
        if tc is None:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"Topic {topic} does not exist")
        if self.ctx.subscription_groups.find_subscription_group_config(group) is None:
            raise BrokerError(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, f"Group {group} does not exist")
        if queue_id >= tc.read_queue_nums:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER,
                f"queueId {queue_id} is illegal, topic {topic} has {tc.read_queue_nums} read queues",
            )
        store = self.ctx.store
        queues = [queue_id] if queue_id >= 0 else list(range(tc.read_queue_nums))
        targets = reset_targets(
            queues,
            offset,
            timestamp,
            lambda q: (store.min_offset_in_queue(topic, q), store.max_offset_in_queue(topic, q)),
            lambda q, ts: store.offset_by_time(topic, q, ts),
        )
        host, port = conn.remote_addr
        log.info("reset of %s@%s %s requested by %s:%d", topic, group, targets, host, port)
        if self.ctx.config.use_server_side_reset_offset:
            for q, new in targets.items():
                self.ctx.offsets.assign_reset_offset(group, topic, q, new)
                self.ctx.long_polling.wake_queue(topic, q)
        else:
            targets = self._legacy_reset(group, topic, targets, timestamp, force)
        broker = self.ctx.config.broker_name
        body = mq_keyed_json((MessageQueue(topic, broker, q), off) for q, off in sorted(targets.items()))
        return cmd.response(body=body)

    def _legacy_reset(
        self, group: str, topic: str, targets: dict[int, int], timestamp: int, force: bool
    ) -> dict[int, int]:
        """Store the offsets and push RESET_CONSUMER_CLIENT_OFFSET to the group's online consumers."""
        offsets = self.ctx.offsets
        final = {}
        for q, new in targets.items():
            current = offsets.query_offset(group, topic, q)
            final[q] = new if force or current is None or new < current else current
            offsets.assign_offset(group, topic, q, final[q])
        broker = self.ctx.config.broker_name
        body = mq_keyed_json((MessageQueue(topic, broker, q), off) for q, off in sorted(final.items()))
        fields = {"topic": topic, "group": group, "timestamp": str(timestamp), "queueId": "-1",
                  "isForce": "true" if force else "false"}  # fmt: skip
        channels = self.ctx.consumers.channels(group)
        for channel in channels:
            channel.send_oneway(
                RemotingCommand.request(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, fields, body)
            )
        log.info("pushed the reset of %s@%s to %d online consumers", topic, group, len(channels))
        return final
