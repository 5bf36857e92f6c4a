"""Client registration: HEART_BEAT (34), UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38),
LOCK_BATCH_MQ (41), UNLOCK_BATCH_MQ (42), CHECK_CLIENT_CONFIG (46); NOTIFY_CONSUMER_IDS_CHANGED (40) pushes;
connection close; and the expiry scan of silent clients (RocketMQ ``ClientManageProcessor``,
``ConsumerManageProcessor``, ``ClientHousekeepingService``).

HEART_BEAT registers synchronously, before it is answered: ali-ons asks GET_CONSUMER_LIST_BY_GROUP right
after its first heartbeat and an error there kills the consumer for good (remoting-protocol §9 trap 16).
It also creates ``%RETRY%<group>``; when that topic is new the answer waits (briefly) for the re-registration
with the NameServers, so the client's very next route query for the retry topic succeeds (trap 9).
The response carries no ``IS_SUPPORT_HEART_BEAT_V2``: Java clients then always send full heartbeats.
"""

from __future__ import annotations

import logging

import orjson

from orbitmq.broker.filters import MessageFilterFactory, SubscriptionData
from orbitmq.broker.groups import ChannelLike, ConsumerManager, ProducerManager
from orbitmq.broker.handlers.context import BrokerContext, channel_of
from orbitmq.broker.heartbeat import HeartbeatData
from orbitmq.broker.locks import MessageQueue, RebalanceLockManager
from orbitmq.broker.longpoll import PullRequestHoldService, sleep_unless_woken
from orbitmq.broker.topics import retry_topic
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.core.service import Service
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "REGISTER_WAIT_S",
    "ClientHandlers",
    "ClientHousekeepingService",
    "notify_consumer_ids_changed",
    "on_connection_closed",
]

log = logging.getLogger("orbitmq.broker.clients")

#: How long a heartbeat that created a retry topic waits for the NameServers (clients time out at 3 s).
REGISTER_WAIT_S = 2.0


def notify_consumer_ids_changed(group: str, channels: list[ChannelLike]) -> None:
    """Oneway NOTIFY_CONSUMER_IDS_CHANGED ``{consumerGroup}`` to every channel of a group whose members or
    subscriptions changed (Java clients rebalance at once; ali-ons ignores it)."""
    for ch in channels:
        ch.send_oneway(
            RemotingCommand.request(
                RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, {"consumerGroup": group}, oneway=True
            )
        )


def on_connection_closed(
    conn: Connection,
    consumers: ConsumerManager,
    producers: ProducerManager,
    long_polling: PullRequestHoldService,
) -> None:
    """A client connection is gone: drop its registrations (the rest of its groups are notified) and its
    held pulls."""
    ch = channel_of(conn)
    groups = consumers.channel_closed(ch)
    producers.channel_closed(ch)
    long_polling.drop_connection(conn.id)
    if groups:
        log.info(
            "%r closed: left consumer groups %s",
            ch,
            ", ".join(groups),
            extra={"event": "consumer_left", "group": ",".join(groups)},
        )


def _json_body(cmd: RemotingCommand) -> dict[str, object]:
    try:
        obj = fastjson.loads(cmd.body_bytes())
    except ProtocolError as exc:
        raise ProtocolError(f"request code {cmd.code}: body is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"request code {cmd.code}: body is not a JSON object")
    return obj


def _queues(body: dict[str, object]) -> list[MessageQueue]:
    raw = body.get("mqSet") or []
    if not isinstance(raw, list):
        raise ProtocolError("mqSet must be a list")
    return [MessageQueue.from_json(q) for q in raw]


class ClientHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx
        self.filters = MessageFilterFactory(ctx.config.enable_property_filter)

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.HEART_BEAT: self.heart_beat,
            RequestCode.UNREGISTER_CLIENT: self.unregister_client,
            RequestCode.GET_CONSUMER_LIST_BY_GROUP: self.get_consumer_list_by_group,
            RequestCode.LOCK_BATCH_MQ: self.lock_batch_mq,
            RequestCode.UNLOCK_BATCH_MQ: self.unlock_batch_mq,
            RequestCode.CHECK_CLIENT_CONFIG: self.check_client_config,
        }

    async def heart_beat(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        hb = HeartbeatData.decode(cmd.body_bytes())
        ch = channel_of(conn)
        now = self.ctx.now_ms
        new_retry_topic = False
        for cd in hb.consumers:
            gcfg = self.ctx.subscription_groups.find_subscription_group_config(cd.group_name)
            if gcfg is None:
                log.warning(
                    "heartbeat from %s: no subscription group %s (auto-create off?)",
                    hb.client_id,
                    cd.group_name,
                )
                continue
            self._log_bad_expressions(hb.client_id, cd.group_name, cd.subscriptions)
            orderly = any(self.ctx.topics.is_order_topic(s.topic) for s in cd.subscriptions)
            new_retry_topic |= not self.ctx.topics.contains(retry_topic(cd.group_name))
            self.ctx.topics.create_retry_topic(
                cd.group_name, gcfg.retry_queue_nums, order=orderly, topic_sys_flag=2 if cd.unit_mode else 0
            )
            self.ctx.consumers.register_consumer(
                cd.group_name, ch, hb.client_id, cmd.language, cmd.version,
                cd.consume_type, cd.message_model, cd.consume_from_where, cd.subscriptions, now,
                notify_enabled=gcfg.notify_consumer_ids_changed_enable,
                update_subscription=not hb.without_sub, client_addr=hb.client_addr,
            )  # fmt: skip
        for group in hb.producer_groups:
            self.ctx.producers.register_producer(group, ch, hb.client_id, cmd.language, cmd.version, now)
        if new_retry_topic:
            await self.ctx.register_now(REGISTER_WAIT_S)
        return cmd.response()

    def _log_bad_expressions(self, client_id: str, group: str, subs: tuple[SubscriptionData, ...]) -> None:
        """Upstream registers a subscription whose SQL92 does not compile and only logs it; its pulls then
        answer FILTER_DATA_NOT_EXIST (a Java client learns it earlier, from CHECK_CLIENT_CONFIG)."""
        for sub in subs:
            error = self.filters.compile_error(sub)
            if error is not None:
                log.warning("heartbeat from %s: group %s, topic %s: %s", client_id, group, sub.topic, error)

    async def unregister_client(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        client_id = cmd.str_field("clientID")
        ch = channel_of(conn)
        producer_group = cmd.opt_str("producerGroup")
        if producer_group:
            self.ctx.producers.unregister_producer(producer_group, ch)
        consumer_group = cmd.opt_str("consumerGroup")
        if consumer_group:
            self.ctx.consumers.unregister_consumer(consumer_group, ch, client_id)
        return cmd.response()

    async def get_consumer_list_by_group(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        group = cmd.str_field("consumerGroup")
        ids = self.ctx.consumers.consumer_ids(group)
        if not ids:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, f"no consumer for this group, {group}")
        return cmd.response(body=orjson.dumps({"consumerIdList": ids}))

    async def lock_batch_mq(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        body = _json_body(cmd)
        group, client_id = body.get("consumerGroup"), body.get("clientId")
        if not isinstance(group, str) or not isinstance(client_id, str):
            raise ProtocolError("LOCK_BATCH_MQ body needs consumerGroup and clientId")
        locked = self.ctx.locks.try_lock_batch(group, _queues(body), client_id, self.ctx.now_ms)
        return cmd.response(body=orjson.dumps({"lockOKMQSet": [mq.to_json() for mq in sorted(locked)]}))

    async def unlock_batch_mq(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        body = _json_body(cmd)
        group, client_id = body.get("consumerGroup"), body.get("clientId")
        if not isinstance(group, str) or not isinstance(client_id, str):
            raise ProtocolError("UNLOCK_BATCH_MQ body needs consumerGroup and clientId")
        self.ctx.locks.unlock_batch(group, _queues(body), client_id)
        return cmd.response()

    async def check_client_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        body = _json_body(cmd)
        raw = body.get("subscriptionData")
        if raw is not None:  # SYSTEM_ERROR with SQL92 off, SUBSCRIPTION_PARSE_FAILED when it does not compile
            self.filters.check(SubscriptionData.from_json(raw))
        return cmd.response()


class ClientHousekeepingService(Service):
    """Every ``interval_s``: drop clients silent for ``channelExpiredTimeout`` (closing their connections)
    and expired orderly-consumer locks."""

    def __init__(
        self,
        consumers: ConsumerManager,
        producers: ProducerManager,
        locks: RebalanceLockManager,
        clock: Clock,
        interval_s: float = 10.0,
    ) -> None:
        super().__init__("ClientHousekeepingService")
        self.consumers = consumers
        self.producers = producers
        self.locks = locks
        self.clock = clock
        self.interval_s = interval_s

    def scan(self) -> int:
        now = self.clock.now_ms()
        expired = self.consumers.scan_expired(now) + self.producers.scan_expired(now)
        for gone in expired:
            log.warning("client %s of group %s silent too long: closing %s", gone.client_id, gone.group,
                        gone.channel.remote_addr)  # fmt: skip
            gone.channel.close()
        self.locks.scan_expired(now)
        return len(expired)

    async def run(self) -> None:
        while not self.stopping:
            await sleep_unless_woken(self.clock, self._wakeup, self.interval_s)
            if self.stopping:
                return
            try:
                self.scan()
            except Exception:
                log.exception("client housekeeping scan failed")
