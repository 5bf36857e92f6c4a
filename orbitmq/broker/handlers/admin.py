"""Admin requests (RocketMQ ``AdminBrokerProcessor``): topics, subscription groups, consumer stats.
The broker's runtime info and config are in :mod:`~orbitmq.broker.handlers.runtime`, offset resets in
:mod:`~orbitmq.broker.handlers.reset`.

Bodies whose Java type is ``Map<MessageQueue, …>`` (ConsumeStats, TopicStatsTable) are written in
fastjson's object-key form, ``{{"brokerName":"b","queueId":0,"topic":"t"}:{…}}``: the Java admin tools
cannot rebuild a MessageQueue from a quoted string key (remoting-protocol §5).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson

from orbitmq.broker.handlers.clients import REGISTER_WAIT_S
from orbitmq.broker.handlers.context import BrokerContext
from orbitmq.broker.locks import MessageQueue
from orbitmq.broker.subscription_groups import SubscriptionGroupConfig
from orbitmq.broker.topics import TopicConfig, parse_attribute_modifications
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["AdminHandlers", "mq_keyed_json", "properties_text"]

log = logging.getLogger("orbitmq.broker.admin")


def mq_keyed_json(entries: Iterable[tuple[MessageQueue, Any]], **fields: Any) -> bytes:
    """A JSON object whose ``offsetTable`` is keyed by MessageQueue objects (fastjson's form), plus
    ``fields`` as ordinary members."""
    table = b",".join(orjson.dumps(mq.to_json()) + b":" + orjson.dumps(value) for mq, value in entries)
    members = [orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in sorted(fields.items())]
    members.append(b'"offsetTable":{' + table + b"}")
    return b"{" + b",".join(members) + b"}"


def properties_text(values: dict[str, object]) -> str:
    """``key=value`` lines, Java ``Properties`` style, booleans lower-case, tuples ``;``-joined."""
    lines = []
    for key, value in sorted(values.items()):
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ";".join(str(v) for v in value)
        else:
            text = str(value)
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


class AdminHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.UPDATE_AND_CREATE_TOPIC: self.update_and_create_topic,
            RequestCode.DELETE_TOPIC_IN_BROKER: self.delete_topic_in_broker,
            RequestCode.GET_ALL_TOPIC_CONFIG: self.get_all_topic_config,
            RequestCode.GET_TOPIC_CONFIG: self.get_topic_config,
            RequestCode.GET_CONSUME_STATS: self.get_consume_stats,
            RequestCode.GET_TOPIC_STATS_INFO: self.get_topic_stats_info,
            RequestCode.GET_CONSUMER_CONNECTION_LIST: self.get_consumer_connection_list,
            RequestCode.GET_ALL_CONSUMER_OFFSET: self.get_all_consumer_offset,
            RequestCode.GET_ALL_DELAY_OFFSET: self.get_all_delay_offset,
            RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: self.update_and_create_subscription_group,
            RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: self.get_all_subscription_group_config,
            RequestCode.DELETE_SUBSCRIPTIONGROUP: self.delete_subscription_group,
            RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG: self.get_subscription_group_config,
        }

    # -- topics ----------------------------------------------------------------------------------------
    async def update_and_create_topic(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        attrs = cmd.opt_str("attributes")
        config = TopicConfig(
            topic_name=cmd.str_field("topic"),
            read_queue_nums=cmd.int_field("readQueueNums"),
            write_queue_nums=cmd.int_field("writeQueueNums"),
            perm=cmd.int_field("perm"),
            topic_filter_type=cmd.str_field("topicFilterType", "SINGLE_TAG"),
            topic_sys_flag=cmd.int_field("topicSysFlag", 0),
            order=cmd.bool_field("order"),
        )
        stored = self.ctx.topics.update_topic_config(
            config, parse_attribute_modifications(attrs) if attrs else None
        )
        log.info("topic %s created/updated by %r", stored.topic_name, conn)
        await self.ctx.register_now(REGISTER_WAIT_S)
        return cmd.response()

    async def delete_topic_in_broker(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic = cmd.str_field("topic")
        if not topic.strip():
            raise BrokerError(ResponseCode.SYSTEM_ERROR, "The specified topic is blank.")
        if self.ctx.config.validate_system_topic_when_update_topic and self.ctx.topics.is_system_topic(topic):
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER, f"The topic[{topic}] is conflict with system topic."
            )
        self.ctx.topics.delete_topic_config(topic)
        self.ctx.offsets.remove_topic(topic)
        await self.ctx.store.delete_topic(topic)
        log.info("topic %s deleted by %r", topic, conn)
        return cmd.response()

    async def get_all_topic_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        return cmd.response(body=orjson.dumps(self.ctx.topics.topic_config_wrapper()))

    async def get_topic_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic = cmd.str_field("topic")
        tc = self.ctx.topics.select_topic_config(topic)
        if tc is None:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"No topic in this broker. topic: {topic}")
        return cmd.response(body=orjson.dumps(tc.to_json()))

    async def get_topic_stats_info(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic = cmd.str_field("topic")
        tc = self.ctx.topics.select_topic_config(topic)
        if tc is None:
            raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist")
        store = self.ctx.store
        entries = []
        for qid in range(tc.write_queue_nums):
            max_offset = store.max_offset_in_queue(topic, qid)
            last = store.message_store_timestamp(topic, qid, max_offset - 1) if max_offset > 0 else 0
            stats = {"lastUpdateTimestamp": max(last, 0), "maxOffset": max_offset,
                     "minOffset": store.min_offset_in_queue(topic, qid)}  # fmt: skip
            entries.append((MessageQueue(topic, self.ctx.config.broker_name, qid), stats))
        return cmd.response(body=mq_keyed_json(entries))

    # -- consumers -------------------------------------------------------------------------------------
    async def get_consume_stats(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group = cmd.str_field("consumerGroup")
        topic = cmd.opt_str("topic")
        if topic:
            topics = [topic]
        else:  # committed on, or subscribed to by an online member (a new group has no offsets yet)
            online = self.ctx.consumers.subscriptions(group)
            topics = sorted(self.ctx.offsets.topics_of_group(group) | set(online))
        store, offsets = self.ctx.store, self.ctx.offsets
        entries = []
        for t in topics:
            tc = self.ctx.topics.select_topic_config(t)
            if tc is None:
                continue
            for qid in range(tc.write_queue_nums):
                consumer = offsets.query_offset(group, t, qid) or 0
                pulled = offsets.query_pull_offset(group, t, qid) or 0
                last = store.message_store_timestamp(t, qid, consumer - 1) if consumer > 0 else 0
                entries.append((
                    MessageQueue(t, self.ctx.config.broker_name, qid),
                    {"brokerOffset": store.max_offset_in_queue(t, qid), "consumerOffset": consumer,
                     "lastTimestamp": max(last, 0), "pullOffset": max(consumer, pulled)},
                ))  # fmt: skip
        return cmd.response(body=mq_keyed_json(entries, consumeTps=0.0))

    async def get_consumer_connection_list(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group = cmd.str_field("consumerGroup")
        info = self.ctx.consumers.group_info(group)
        if info is None:
            raise BrokerError(ResponseCode.CONSUMER_NOT_ONLINE, f"the consumer group[{group}] not online")
        return cmd.response(body=orjson.dumps(info.to_consumer_connection_json()))

    async def get_all_consumer_offset(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        return cmd.response(body=orjson.dumps(self.ctx.offsets.encode_obj()))

    async def get_all_delay_offset(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        return cmd.response(body=orjson.dumps(self.ctx.delay_offsets.encode_obj()))

    # -- subscription groups ---------------------------------------------------------------------------
    async def update_and_create_subscription_group(
        self, cmd: RemotingCommand, conn: Connection
    ) -> RemotingCommand:
        obj = fastjson.loads(cmd.body_bytes())
        if not isinstance(obj, dict):
            raise ProtocolError("subscription group config body must be a JSON object")
        try:
            config = SubscriptionGroupConfig.from_json(obj)
        except ValueError as exc:
            raise ProtocolError(f"bad subscription group config: {exc}") from exc
        self.ctx.subscription_groups.update_subscription_group_config(config)
        return cmd.response()

    async def get_all_subscription_group_config(
        self, cmd: RemotingCommand, conn: Connection
    ) -> RemotingCommand:
        return cmd.response(body=orjson.dumps(self.ctx.subscription_groups.wrapper_json()))

    async def get_subscription_group_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group = cmd.str_field("group")
        config = self.ctx.subscription_groups.get(group)  # a read never auto-creates the group
        if config is None:
            raise BrokerError(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, f"No group {group} in this broker")
        return cmd.response(body=orjson.dumps(config.to_json()))

    async def delete_subscription_group(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group = cmd.str_field("groupName")
        self.ctx.subscription_groups.delete_subscription_group_config(group)
        if cmd.bool_field("cleanOffset"):
            self.ctx.offsets.remove_group(group)
        return cmd.response()
