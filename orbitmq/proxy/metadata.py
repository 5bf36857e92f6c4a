"""What the proxy learns from brokers and keeps for a while: topic routes (with the TBW102 fallback), topic
message types and consumer-group settings. Both backends answer these through the same remoting requests
(GET_TOPIC_CONFIG, GET_ALL_SUBSCRIPTIONGROUP_CONFIG), cached for ``topicRouteServiceCacheRefreshSeconds`` /
``subscriptionGroupConfigCacheRefreshSeconds``, as the Java proxy's metadata caches are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from orbitmq.client.model import MessageQueue
from orbitmq.client.routing import TopicRoute
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.proxy.backends.base import Backend
from orbitmq.proxy.config import ProxyConfig

__all__ = ["DEFAULT_TOPIC", "GroupSettings", "Metadata", "accepted_types"]

log = logging.getLogger("orbitmq.proxy")

DEFAULT_TOPIC = "TBW102"
#: Queues of a topic a first send creates through TBW102 (the Java producer's ``defaultTopicQueueNums``).
DEFAULT_TOPIC_QUEUE_NUMS = 4
_NORMAL, _FIFO, _DELAY, _TRANSACTION = 1, 2, 3, 4  # apache.rocketmq.v2.MessageType
_ALL_TYPES = (_NORMAL, _FIFO, _DELAY, _TRANSACTION)
_TYPE_BY_ATTRIBUTE = {
    "NORMAL": (_NORMAL,),
    "FIFO": (_FIFO,),
    "DELAY": (_DELAY,),
    "TRANSACTION": (_TRANSACTION,),
}
METADATA_TIMEOUT_S = 3.0


def accepted_types(message_type_attribute: str | None) -> tuple[int, ...]:
    """The gRPC message types a topic accepts. The topic's ``message.type`` attribute decides when it is
    set (MIXED: all); a topic without one (every auto-created topic) accepts all four, so OrbitMQ's
    "topics are created on first use" works for every message type."""
    if not message_type_attribute:
        return _ALL_TYPES
    return _TYPE_BY_ATTRIBUTE.get(message_type_attribute.upper(), _ALL_TYPES)


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """The consumer-group settings a gRPC client is told (``subscription.fifo``, retry attempts)."""

    fifo: bool = False  # consumeMessageOrderly
    retry_max_times: int = 16  # retryMaxTimes

    @property
    def max_attempts(self) -> int:
        """Deliveries before the dead-letter queue: retryMaxTimes + 1, as the Java proxy tells clients."""
        return self.retry_max_times + 1


class Metadata:
    def __init__(self, backend: Backend, config: ProxyConfig, clock: Clock) -> None:
        self.backend, self.config, self.clock = backend, config, clock
        self._types: dict[str, tuple[float, tuple[int, ...], bool]] = {}
        self._groups: dict[str, tuple[float, dict[str, GroupSettings]]] = {}

    # -- routes ----------------------------------------------------------------------------------------
    async def route(self, topic: str, *, refresh: bool = False) -> TopicRoute:
        """The topic's route; a topic that does not exist yet gets TBW102's brokers when some broker
        allows auto-creation (a first send there creates it), as RocketMQ producers do."""
        try:
            return await self.backend.route(topic, refresh=refresh)
        except BrokerError as exc:
            if exc.code != ResponseCode.TOPIC_NOT_EXIST:
                raise
        try:
            default = await self.backend.route(DEFAULT_TOPIC)
        except BrokerError as exc:
            if exc.code == ResponseCode.TOPIC_NOT_EXIST:
                raise BrokerError(ResponseCode.TOPIC_NOT_EXIST, f"topic {topic} does not exist") from None
            raise
        names = sorted({q.broker_name for q in default.publish_queues})
        queues = tuple(MessageQueue(topic, b, q) for b in names for q in range(DEFAULT_TOPIC_QUEUE_NUMS))
        return TopicRoute(topic, queues, queues, default.broker_addrs, default.cluster_by_broker)

    async def topic_exists(self, topic: str) -> bool:
        try:
            await self.backend.route(topic, refresh=True)
        except BrokerError as exc:
            if exc.code == ResponseCode.TOPIC_NOT_EXIST:
                return False
            raise
        return True

    # -- topic message types ---------------------------------------------------------------------------
    async def topic_types(self, topic: str, broker_name: str) -> tuple[tuple[int, ...], bool]:
        """(accepted gRPC message types, whether the topic declares a type) — cached."""
        now = self.clock.monotonic()
        cached = self._types.get(topic)
        if cached is not None and now - cached[0] < self.config.topic_route_service_cache_refresh_seconds:
            return cached[1], cached[2]
        attribute: str | None = None
        try:
            resp = await self._call(broker_name, RequestCode.GET_TOPIC_CONFIG, {"topic": topic})
            if resp.code == ResponseCode.SUCCESS:
                attrs = orjson.loads(resp.body_bytes()).get("attributes") or {}
                attribute = attrs.get("+message.type") or attrs.get("message.type")
        except (ClientError, orjson.JSONDecodeError, AttributeError) as exc:
            log.info("topic config of %s from %s unavailable: %s", topic, broker_name, exc)
        declared = attribute is not None and attribute.upper() not in ("", "MIXED")
        result = (accepted_types(attribute), declared)
        self._types[topic] = (now, result[0], result[1])
        return result

    # -- consumer groups -------------------------------------------------------------------------------
    async def group_settings(self, group: str, broker_name: str | None) -> GroupSettings:
        """The group's settings as ``broker_name`` (or any known broker) has them; defaults for a group
        that does not exist yet (brokers auto-create groups with exactly these defaults)."""
        names = [broker_name] if broker_name else self.backend.broker_names()
        for name in names:
            table = await self._group_table(name)
            if table is not None:
                return table.get(group, GroupSettings())
        return GroupSettings()

    async def _group_table(self, broker_name: str) -> dict[str, GroupSettings] | None:
        now = self.clock.monotonic()
        cached = self._groups.get(broker_name)
        ttl = self.config.subscription_group_config_cache_refresh_seconds
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        try:
            resp = await self._call(broker_name, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, {})
            if resp.code != ResponseCode.SUCCESS:
                return cached[1] if cached else None
            raw: dict[str, Any] = orjson.loads(resp.body_bytes()).get("subscriptionGroupTable") or {}
            table = {
                name: GroupSettings(
                    fifo=bool(cfg.get("consumeMessageOrderly", False)),
                    retry_max_times=int(cfg.get("retryMaxTimes", 16)),
                )
                for name, cfg in raw.items()
                if isinstance(cfg, dict)
            }
        except (ClientError, orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            log.info("group configs of %s unavailable: %s", broker_name, exc)
            return cached[1] if cached else None
        self._groups[broker_name] = (now, table)
        return table

    def forget_group_cache(self) -> None:
        self._groups.clear()

    async def _call(self, broker_name: str, code: int, fields: dict[str, str]) -> RemotingCommand:
        return await self.backend.invoke(
            broker_name, RemotingCommand.request(code, fields), METADATA_TIMEOUT_S
        )
