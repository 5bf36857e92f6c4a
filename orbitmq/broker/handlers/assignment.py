"""Broker-side assignment: QUERY_ASSIGNMENT (400), SET_MESSAGE_REQUEST_MODE (401),
GET_ALL_MESSAGE_REQUEST_MODE (402), and OrbitMQ's push of mode/assignment changes (403) to the clients.

The queue set of a topic is cluster-wide, as upstream's ``TopicRouteInfoManager`` gives it: the topic's
route from the NameServers (cached ``ROUTE_TTL_MS``), with this broker's own queues taken from its live
topic table. Without NameServers (or while they are unreachable) the local queues are used.

NOTIFY_MESSAGE_REQUEST_MODE_CHANGED (403, oneway, ext ``consumerGroup``, ``topic``, ``mode``,
``popShareQueueNum``, ``reason``) goes only to connections that asked for it: a GET_ALL_MESSAGE_REQUEST_MODE
carrying ``consumerGroup=G`` and ``subscribeModeChange=true`` subscribes that connection for group G
(upstream clients never send it, so they never receive a code they do not know). It is sent when
SET_MESSAGE_REQUEST_MODE changes the mode or ``popShareQueueNum`` of a (topic, group) (``reason``
``MODE_CHANGED``), and when a membership change or a change of this broker's queues of a topic changes some
member's POP assignment (``reason`` ``ASSIGNMENT_CHANGED``, only to the members concerned).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson

from orbitmq.broker.assignment import (
    STRATEGIES,
    MessageRequestMode,
    MessageRequestModeManager,
    RequestModeSetting,
    assign,
    changed_pop_assignments,
    is_retry_topic,
)
from orbitmq.broker.groups import ChannelLike, ConsumerManager
from orbitmq.broker.handlers.context import BrokerContext, ClientChannel
from orbitmq.broker.heartbeat import MessageModel
from orbitmq.broker.locks import MessageQueue
from orbitmq.broker.topics import TopicConfigManager, is_readable, validate_group, validate_topic
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ClientError, ProtocolError
from orbitmq.net.client import RemotingClient
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "ROUTE_TTL_MS",
    "AssignmentHandlers",
    "ModeChangeNotifier",
    "TopicQueueSource",
    "build_assignment_handlers",
    "subscribe_mode_changes",
]

log = logging.getLogger("orbitmq.broker.assignment")

#: How long a topic route fetched from the NameServers is used (upstream refreshes every 30 s).
ROUTE_TTL_MS: Final = 30_000
_ROUTE_TIMEOUT_S: Final = 3.0
_RETRY_AFTER_FAILURE_MS: Final = 5_000
#: Connection attribute: the consumer groups whose mode changes this connection subscribed to.
_SUBSCRIBED_KEY: Final = "orbitmq.broker.mode_change_groups"


class TopicQueueSource:
    """The readable queues of a topic on every broker: NameServer route plus this broker's live table."""

    def __init__(
        self,
        broker_name: str,
        namesrv_addrs: tuple[str, ...],
        topics: TopicConfigManager,
        client: RemotingClient | None,
        clock: Clock,
    ) -> None:
        self.broker_name = broker_name
        self.namesrv_addrs = namesrv_addrs
        self.topics = topics
        self.client = client
        self.clock = clock
        self._routes: dict[
            str, tuple[int, set[MessageQueue]]
        ] = {}  # topic → (fetched ms, other brokers' queues)
        self._failed_at: dict[str, int] = {}  # topic → when no NameServer answered (ms)
        #: Route requests sent to the NameServers (tests and metrics read it).
        self.route_requests = 0

    def _local(self, topic: str) -> set[MessageQueue]:
        config = self.topics.select_topic_config(topic)
        if config is None or not is_readable(config.perm):
            return set()
        return {MessageQueue(topic, self.broker_name, i) for i in range(config.read_queue_nums)}

    def cached(self, topic: str) -> set[MessageQueue] | None:
        """Without any I/O: the last known route plus the local queues; None when no readable queue of the
        topic is known (upstream's "topic does not exist")."""
        queues = self._local(topic)
        known = self._routes.get(topic)
        if known is not None:
            queues |= known[1]
        return queues or None

    async def queues(self, topic: str) -> set[MessageQueue] | None:
        """The topic's queues, refreshing the route when it is older than :data:`ROUTE_TTL_MS`."""
        now = self.clock.now_ms()
        known = self._routes.get(topic)
        due = known is None or now - known[0] >= ROUTE_TTL_MS
        if due and now - self._failed_at.get(topic, now - _RETRY_AFTER_FAILURE_MS) >= _RETRY_AFTER_FAILURE_MS:
            others = await self._fetch(topic)
            # No NameServer answered: keep the stale route (a brief outage must not shrink assignments)
            # and do not make every request of the next seconds wait for another timeout.
            if others is None:
                self._failed_at[topic] = self.clock.now_ms()
            else:
                self._failed_at.pop(topic, None)
                self._routes[topic] = (self.clock.now_ms(), others)
        return self.cached(topic)

    async def _fetch(self, topic: str) -> set[MessageQueue] | None:
        """Other brokers' readable queues of ``topic`` from the first NameServer that answers."""
        if self.client is None:
            return None
        for ns in self.namesrv_addrs:
            cmd = RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
            self.route_requests += 1
            try:
                resp = await self.client.invoke(ns, cmd, _ROUTE_TIMEOUT_S)
            except ClientError as exc:
                log.info("route of %s from NameServer %s failed: %s", topic, ns, exc)
                continue
            if resp.code == ResponseCode.TOPIC_NOT_EXIST:
                return set()
            if resp.code != ResponseCode.SUCCESS:
                continue
            try:
                return self._parse(topic, resp.body_bytes())
            except ProtocolError as exc:
                log.warning("route of %s from NameServer %s is malformed: %s", topic, ns, exc)
        return None

    def _parse(self, topic: str, body: bytes) -> set[MessageQueue]:
        route = fastjson.loads(body)
        out: set[MessageQueue] = set()
        try:
            for qd in route.get("queueDatas") or []:
                name = str(qd["brokerName"])
                if name != self.broker_name and is_readable(int(qd["perm"])):
                    out |= {MessageQueue(topic, name, i) for i in range(int(qd["readQueueNums"]))}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"bad queueDatas: {exc!r}") from exc
        return out

    def forget(self, topic: str) -> None:
        self._routes.pop(topic, None)


def subscribe_mode_changes(conn: Connection, group: str) -> None:
    groups = conn.attributes.setdefault(_SUBSCRIBED_KEY, set())
    assert isinstance(groups, set)
    groups.add(group)


def _subscribed(channel: ChannelLike, group: str) -> bool:
    if not isinstance(channel, ClientChannel):
        return False
    groups = channel.conn.attributes.get(_SUBSCRIBED_KEY)
    return isinstance(groups, set) and group in groups


class ModeChangeNotifier:
    """Sends NOTIFY_MESSAGE_REQUEST_MODE_CHANGED to the subscribed connections of a group's members."""

    def __init__(
        self,
        modes: MessageRequestModeManager,
        consumers: ConsumerManager,
        queues: TopicQueueSource,
        default_mode: MessageRequestMode,
        default_share: int,
    ) -> None:
        self.modes = modes
        self.consumers = consumers
        self.queues = queues
        self.default_mode = default_mode
        self.default_share = default_share
        self._members: dict[str, list[str]] = {}  # group → client ids at the last membership event
        #: Notifications sent (tests and metrics read them).
        self.sent = 0

    def pop_settings(self, group: str) -> list[RequestModeSetting]:
        """The POP settings of the group's topics: stored ones, plus subscribed topics left at a POP default."""
        stored = self.modes.group_modes(group)
        topics = set(stored) | set(self.consumers.subscriptions(group))
        settings = [
            self.modes.effective(t, group, self.default_mode, self.default_share) for t in sorted(topics)
        ]
        return [s for s in settings if s.mode is MessageRequestMode.POP]

    def notify(self, setting: RequestModeSetting, reason: str, client_ids: set[str] | None = None) -> int:
        """Tell the subscribed members (all, or only ``client_ids``); how many connections were told."""
        fields = {"consumerGroup": setting.consumer_group, "topic": setting.topic, "mode": setting.mode.value,
                  "popShareQueueNum": str(setting.pop_share_queue_num), "reason": reason}  # fmt: skip
        told = 0
        group = setting.consumer_group
        for channel in self.consumers.channels(group):
            if not _subscribed(channel, group):
                continue
            if client_ids is not None and not any(
                self.consumers.find_channel(group, cid) is channel for cid in client_ids
            ):
                continue
            cmd = RemotingCommand.request(
                RequestCode.NOTIFY_MESSAGE_REQUEST_MODE_CHANGED, dict(fields), oneway=True
            )
            channel.send_oneway(cmd)
            told += 1
        self.sent += told
        return told

    def on_group_change(self, group: str) -> None:
        """A member joined or left (ConsumerManager's change callback): tell the members whose POP
        assignment of some topic is now different."""
        new = self.consumers.consumer_ids(group)
        old = self._members.get(group)
        self._members[group] = new
        if old is None or old == new:
            return
        for setting in self.pop_settings(group):
            queues = self.queues.cached(setting.topic)
            if not queues:
                continue
            strategy = STRATEGIES["AVG"]  # the Java client's default, used by every upstream POP consumer
            changed = changed_pop_assignments(setting, strategy, queues, old, new)
            if changed:
                self.notify(setting, "ASSIGNMENT_CHANGED", set(changed))

    def on_topic_change(self, topic: str) -> None:
        """This broker's queues of ``topic`` changed: every POP member of every group on it re-asks."""
        for group in sorted(self.consumers.groups_of_topic(topic) | self._groups_with_mode(topic)):
            setting = self.modes.effective(topic, group, self.default_mode, self.default_share)
            if setting.mode is MessageRequestMode.POP:
                self.notify(setting, "ASSIGNMENT_CHANGED")

    def _groups_with_mode(self, topic: str) -> set[str]:
        return {g for g in self.consumers.groups() if topic in self.modes.group_modes(g)}


def _json_body(cmd: RemotingCommand) -> dict[str, Any]:
    try:
        obj = fastjson.loads(cmd.body_bytes())
    except ProtocolError as exc:
        raise ProtocolError(f"request code {cmd.code}: body is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"request code {cmd.code}: body is not a JSON object")
    return obj


class AssignmentHandlers:
    def __init__(
        self,
        ctx: BrokerContext,
        modes: MessageRequestModeManager,
        queues: TopicQueueSource,
        notifier: ModeChangeNotifier,
    ) -> None:
        self.ctx = ctx
        self.modes = modes
        self.queues = queues
        self.notifier = notifier
        #: Requests served, by code (the rebalance benchmark and metrics read them).
        self.counts: dict[int, int] = {}

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.QUERY_ASSIGNMENT: self.query_assignment,
            RequestCode.SET_MESSAGE_REQUEST_MODE: self.set_message_request_mode,
            RequestCode.GET_ALL_MESSAGE_REQUEST_MODE: self.get_all_message_request_mode,
        }

    def _count(self, code: int) -> None:
        self.counts[code] = self.counts.get(code, 0) + 1

    @property
    def default_mode(self) -> MessageRequestMode:
        return MessageRequestMode(self.ctx.config.default_message_request_mode)

    async def query_assignment(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        self._count(cmd.code)
        body = _json_body(cmd)
        topic, group, cid = body.get("topic"), body.get("consumerGroup"), body.get("clientId")
        strategy_name, model = body.get("strategyName"), body.get("messageModel")
        if not isinstance(topic, str) or not isinstance(group, str) or not isinstance(cid, str):
            raise ProtocolError("QUERY_ASSIGNMENT body needs topic, consumerGroup and clientId")
        try:
            message_model = MessageModel(model)
        except ValueError:
            raise ProtocolError(f"QUERY_ASSIGNMENT: unknown messageModel {model!r}") from None
        setting = self.modes.effective(
            topic, group, self.default_mode, self.ctx.config.default_pop_share_queue_num
        )
        queues = await self._assignment(setting, cid, message_model, strategy_name)
        out: dict[str, Any] = {}
        if queues is not None:  # None: "no valid result", the client keeps what it has (upstream: null)
            out["messageQueueAssignments"] = [
                {"messageQueue": mq.to_json(), "mode": setting.mode.value} for mq in sorted(queues)
            ]
        return cmd.response(body=orjson.dumps(out))

    async def _assignment(
        self, setting: RequestModeSetting, cid: str, model: MessageModel, strategy_name: object
    ) -> set[MessageQueue] | None:
        topic, group = setting.topic, setting.consumer_group
        queues = await self.queues.queues(topic)
        if model is MessageModel.BROADCASTING or (
            queues is not None and not self.ctx.config.server_load_balancer_enable
        ):
            return queues
        if queues is None:
            if not is_retry_topic(topic):
                log.warning("QueryLoad: no assignment for group %s: topic %s does not exist", group, topic)
            return None
        cids = self.ctx.consumers.consumer_ids(group)
        if not cids:
            log.warning("QueryLoad: no assignment for group %s topic %s: no consumer online", group, topic)
            return None
        strategy = STRATEGIES.get(strategy_name) if isinstance(strategy_name, str) else None
        if strategy is None:
            log.warning("QueryLoad: unsupported strategy %r (group %s)", strategy_name, group)
            return None
        return assign(setting, strategy, cid, queues, cids)

    async def set_message_request_mode(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        self._count(cmd.code)
        setting = RequestModeSetting.from_json(_json_body(cmd))
        if is_retry_topic(setting.topic):
            raise BrokerError(ResponseCode.NO_PERMISSION, "retry topic is not allowed to set mode")
        error = validate_topic(setting.topic) or validate_group(setting.consumer_group)
        if error is not None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, error)
        cfg = self.ctx.config
        before = self.modes.effective(
            setting.topic, setting.consumer_group, self.default_mode, cfg.default_pop_share_queue_num
        )
        self.modes.set_mode(setting)
        await self.modes.persist_async()  # upstream persists before answering
        if (before.mode, before.pop_share_queue_num) != (setting.mode, setting.pop_share_queue_num):
            told = self.notifier.notify(setting, "MODE_CHANGED")
            log.info("group %s topic %s: request mode %s (popShareQueueNum %d), %d connection(s) told",
                     setting.consumer_group, setting.topic, setting.mode.value, setting.pop_share_queue_num,
                     told)  # fmt: skip
        return cmd.response()

    async def get_all_message_request_mode(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        self._count(cmd.code)
        group = cmd.opt_str("consumerGroup") or None
        if group is not None and cmd.bool_field("subscribeModeChange"):
            subscribe_mode_changes(conn, group)
        cfg = self.ctx.config
        fields = {"defaultMessageRequestMode": cfg.default_message_request_mode,
                  "defaultPopShareQueueNum": str(cfg.default_pop_share_queue_num)}  # fmt: skip
        return cmd.response(ext_fields=fields, body=orjson.dumps(self.modes.table_json(group)))


def build_assignment_handlers(
    ctx: BrokerContext, modes: MessageRequestModeManager, namesrv_client: RemotingClient | None
) -> AssignmentHandlers:
    """The handlers with their queue source and notifier, wired to the broker's state."""
    cfg = ctx.config
    queues = TopicQueueSource(cfg.broker_name, cfg.namesrv_addr, ctx.topics, namesrv_client, ctx.clock)
    notifier = ModeChangeNotifier(
        modes,
        ctx.consumers,
        queues,
        MessageRequestMode(cfg.default_message_request_mode),
        cfg.default_pop_share_queue_num,
    )
    return AssignmentHandlers(ctx, modes, queues, notifier)
