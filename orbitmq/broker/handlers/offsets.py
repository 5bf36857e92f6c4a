"""Consumer offsets and queue positions: QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15),
SEARCH_OFFSET_BY_TIMESTAMP (29), GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32).

QUERY_CONSUMER_OFFSET for a group that never committed on the queue (remoting-protocol §2.6, §9 trap 11):
SUCCESS with offset 0 when the queue still starts at 0 and its message 0 is still stored — or the queue is
empty, as a 4.9 broker answers — else QUERY_NOT_FOUND (22), and always 22 when the client sent
``setZeroIfNotFound=false``. Answering 0 for an empty queue spares ali-ons an error event (it emits one on
22, then asks GET_MAX_OFFSET and lands on the same 0); a 5.x broker would say 22 there.

UPDATE_CONSUMER_OFFSET requires the group and the topic to exist (26 / 17, as upstream). A negative commit
(ali-ons sends -1 for an in-memory 0) is answered SUCCESS and not stored, so it never rewinds an offset;
so is a commit on a queue whose server-side reset no consumer has picked up yet (remark says so).
"""

from __future__ import annotations

from orbitmq.broker.handlers.context import BrokerContext, java_fields
from orbitmq.core.errors import BrokerError
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["OffsetHandlers", "search_offset"]


def search_offset(lower: int, min_offset: int, max_offset: int, upper_bound: bool) -> int:
    """SEARCH_OFFSET_BY_TIMESTAMP's answer from ``lower`` (the store's first offset stored at or after
    the time; the max offset when none). LOWER is ``lower`` itself; UPPER is the last offset stored at or
    before the time: the caller passes ``lower`` for ``time + 1`` and gets ``lower - 1``, or 0 when every
    message is newer."""
    if not upper_bound:
        return lower
    if max_offset <= 0 or lower <= min_offset:
        return 0
    return lower - 1


class OffsetHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.QUERY_CONSUMER_OFFSET: self.query_consumer_offset,
            RequestCode.UPDATE_CONSUMER_OFFSET: self.update_consumer_offset,
            RequestCode.SEARCH_OFFSET_BY_TIMESTAMP: self.search_offset_by_timestamp,
            RequestCode.GET_MAX_OFFSET: self.get_max_offset,
            RequestCode.GET_MIN_OFFSET: self.get_min_offset,
            RequestCode.GET_EARLIEST_MSG_STORETIME: self.get_earliest_msg_storetime,
        }

    async def query_consumer_offset(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group, topic = cmd.str_field("consumerGroup"), cmd.str_field("topic")
        queue_id = cmd.int_field("queueId")
        offset = self.ctx.offsets.query_offset(group, topic, queue_id)
        if offset is not None:
            return cmd.response(ext_fields=java_fields(offset=offset))
        if cmd.opt_str("setZeroIfNotFound") is not None and not cmd.bool_field("setZeroIfNotFound"):
            return cmd.response(
                ResponseCode.QUERY_NOT_FOUND, "Not found, do not set to zero, maybe this group boot first"
            )
        store = self.ctx.store
        starts_at_zero = store.min_offset_in_queue(topic, queue_id) <= 0
        empty = store.max_offset_in_queue(topic, queue_id) <= 0
        if starts_at_zero and (empty or store.message_store_timestamp(topic, queue_id, 0) >= 0):
            return cmd.response(ext_fields=java_fields(offset=0))
        return cmd.response(
            ResponseCode.QUERY_NOT_FOUND, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first"
        )

    async def update_consumer_offset(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group, topic = cmd.str_field("consumerGroup"), cmd.str_field("topic")
        queue_id = cmd.opt_int("queueId")
        offset = cmd.opt_int("commitOffset")
        if not self.ctx.subscription_groups.contains(group):
            raise BrokerError(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, f"Group {group} not exist!")
        tc = self.ctx.topics.select_topic_config(topic)
        if tc is None:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"Topic {topic} not exist!")
        if queue_id is None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, f"QueueId is null, topic is {topic}")
        if not 0 <= queue_id < tc.queue_nums:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER, f"QueueId {queue_id} is illegal, topic is {topic}"
            )
        if offset is None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, f"Offset is null, topic is {topic}")
        if self.ctx.offsets.has_offset_reset(group, topic, queue_id):
            # The client has not seen the reset yet: its offset is stale (upstream answers the same way).
            return cmd.response(remark="Offset has been previously reset")
        host, port = conn.remote_addr
        self.ctx.offsets.commit_offset(group, topic, queue_id, offset, f"{host}:{port}")
        return cmd.response()

    async def search_offset_by_timestamp(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic, queue_id = cmd.str_field("topic"), cmd.int_field("queueId")
        timestamp = cmd.int_field("timestamp")
        upper = (cmd.opt_str("boundaryType") or "LOWER").upper() == "UPPER"
        store = self.ctx.store
        lower = store.offset_by_time(topic, queue_id, timestamp + 1 if upper else timestamp)
        offset = search_offset(
            lower,
            store.min_offset_in_queue(topic, queue_id),
            store.max_offset_in_queue(topic, queue_id),
            upper,
        )
        return cmd.response(ext_fields=java_fields(offset=offset))

    async def get_max_offset(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        offset = self.ctx.store.max_offset_in_queue(cmd.str_field("topic"), cmd.int_field("queueId"))
        return cmd.response(ext_fields=java_fields(offset=offset))

    async def get_min_offset(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        offset = self.ctx.store.min_offset_in_queue(cmd.str_field("topic"), cmd.int_field("queueId"))
        return cmd.response(ext_fields=java_fields(offset=offset))

    async def get_earliest_msg_storetime(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        ts = self.ctx.store.earliest_message_time(cmd.str_field("topic"), cmd.int_field("queueId"))
        return cmd.response(ext_fields=java_fields(timestamp=ts))
