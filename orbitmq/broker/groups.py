"""Clients and groups on the broker (RocketMQ ``ConsumerManager``, ``ProducerManager``,
``RebalanceLockManager``, ``SubscriptionGroupManager``), as a functional core the handlers call.

Channels are opaque here: any object with the :class:`ChannelLike` members (``orbitmq.net``'s connection
is one). Tables are keyed by ``channel.id``; nothing in this module sends or closes anything. Membership
changes are reported to an ``on_change(group, channels)`` callback, which the broker wires to a oneway
NOTIFY_CONSUMER_IDS_CHANGED (code 40, ext ``{consumerGroup}``) per channel. Time comes in as ``now_ms``.

Upstream facts mirrored (pop-and-storage §4, remoting-protocol §2.5-§2.6):

- A heartbeat registers (group, channel, clientId); a new channel or a subscription change notifies the
  group unless it is BROADCASTING or notification is off (broker ``notifyConsumerIdsChangedEnable`` and
  the group's flag). A subscription is replaced only by a newer ``subVersion``; topics missing from a
  full heartbeat are dropped.
- Unregister and channel close remove the client, drop an empty group and notify the rest.
- Expiry: a client silent for ``channelExpiredTimeout`` (120 s) is removed. Upstream does not notify the
  rest on this path; we do (they rebalance at once instead of at their next timer), and the caller
  closes the expired channels.
- Orderly-consumer locks: one client per (group, queue), expiring 60 s after the last renewal
  (``rocketmq.broker.rebalance.lockMaxLiveTime``).
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.filters import SubscriptionData
from orbitmq.broker.persist import DataVersion, JsonConfigManager
from orbitmq.broker.topics import validate_group
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.store.fileops import FileOps

__all__ = [
    "ChannelLike",
    "ClientInfo",
    "ConsumeFromWhere",
    "ConsumeType",
    "ConsumerData",
    "ConsumerGroupSnapshot",
    "ConsumerIdsChangeListener",
    "ConsumerManager",
    "ExpiredClient",
    "HeartbeatData",
    "MessageModel",
    "MessageQueue",
    "ProducerManager",
    "RebalanceLockManager",
    "RegisterResult",
    "SubscriptionGroupConfig",
    "SubscriptionGroupManager",
]

log = logging.getLogger("orbitmq.broker.groups")


class ChannelLike(Protocol):
    """What the managers need of a client connection. ``send_oneway``/``close`` may be sync or async."""

    @property
    def id(self) -> int: ...

    @property
    def remote_addr(self) -> str:
        """``"host:port"`` of the peer, as admin bodies show it."""
        ...

    def send_oneway(self, cmd: RemotingCommand) -> object: ...

    def close(self) -> object: ...


class ConsumeType(enum.Enum):
    CONSUME_ACTIVELY = "CONSUME_ACTIVELY"  # pull / lite pull
    CONSUME_PASSIVELY = "CONSUME_PASSIVELY"  # push
    CONSUME_POP = "CONSUME_POP"


class MessageModel(enum.Enum):
    BROADCASTING = "BROADCASTING"
    CLUSTERING = "CLUSTERING"


class ConsumeFromWhere(enum.Enum):
    CONSUME_FROM_LAST_OFFSET = "CONSUME_FROM_LAST_OFFSET"
    CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST = (
        "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST"
    )
    CONSUME_FROM_MIN_OFFSET = "CONSUME_FROM_MIN_OFFSET"
    CONSUME_FROM_MAX_OFFSET = "CONSUME_FROM_MAX_OFFSET"
    CONSUME_FROM_FIRST_OFFSET = "CONSUME_FROM_FIRST_OFFSET"
    CONSUME_FROM_TIMESTAMP = "CONSUME_FROM_TIMESTAMP"


# -- heartbeat body -----------------------------------------------------------------------------------------
def _enum_field(obj: Mapping[str, Any], key: str, kind: type[enum.Enum], default: enum.Enum) -> Any:
    raw = obj.get(key)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ProtocolError(f"heartbeat: unknown {key} {raw!r}") from None


@dataclass(frozen=True, slots=True)
class ConsumerData:
    """One consumer group of a HEART_BEAT body (remoting-protocol §5.3)."""

    group_name: str  # groupName
    consume_type: ConsumeType = ConsumeType.CONSUME_PASSIVELY  # consumeType
    message_model: MessageModel = MessageModel.CLUSTERING  # messageModel
    consume_from_where: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET  # consumeFromWhere
    subscriptions: tuple[SubscriptionData, ...] = ()  # subscriptionDataSet
    unit_mode: bool = False  # unitMode

    @classmethod
    def from_json(cls, obj: object) -> ConsumerData:
        if not isinstance(obj, dict) or not isinstance(obj.get("groupName"), str) or not obj["groupName"]:
            raise ProtocolError("heartbeat: consumer data without a groupName")
        subs = obj.get("subscriptionDataSet")
        subs = [] if subs is None else subs
        if not isinstance(subs, list):
            raise ProtocolError("heartbeat: subscriptionDataSet must be a list")
        return cls(
            group_name=obj["groupName"],
            consume_type=_enum_field(obj, "consumeType", ConsumeType, ConsumeType.CONSUME_PASSIVELY),
            message_model=_enum_field(obj, "messageModel", MessageModel, MessageModel.CLUSTERING),
            consume_from_where=_enum_field(
                obj, "consumeFromWhere", ConsumeFromWhere, ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
            ),
            subscriptions=tuple(SubscriptionData.from_json(s) for s in subs),
            unit_mode=bool(obj.get("unitMode", False)),
        )


@dataclass(frozen=True, slots=True)
class HeartbeatData:
    """A HEART_BEAT body. ``without_sub`` (heartbeat v2) means "subscriptions unchanged, keep them"."""

    client_id: str  # clientID
    producer_groups: tuple[str, ...] = ()  # producerDataSet[].groupName
    consumers: tuple[ConsumerData, ...] = ()  # consumerDataSet
    heartbeat_fingerprint: int = 0  # heartbeatFingerprint
    without_sub: bool = False  # withoutSub
    #: OrbitMQ's addition, sent by its proxy for a gRPC client: that client's address (Java brokers
    #: ignore the key). Display only: admin bodies show it instead of the proxy's connection.
    client_addr: str | None = None  # clientAddr

    @classmethod
    def decode(cls, body: bytes) -> HeartbeatData:
        """Parse the JSON body; :class:`ProtocolError` for anything malformed (answer SYSTEM_ERROR)."""
        return cls.from_json(fastjson.loads(body))

    @classmethod
    def from_json(cls, obj: object) -> HeartbeatData:
        if not isinstance(obj, dict) or not isinstance(obj.get("clientID"), str) or not obj["clientID"]:
            raise ProtocolError("heartbeat without a clientID")
        producers = obj.get("producerDataSet")
        consumers = obj.get("consumerDataSet")
        producers = [] if producers is None else producers
        consumers = [] if consumers is None else consumers
        if not isinstance(producers, list) or not isinstance(consumers, list):
            raise ProtocolError("heartbeat: producerDataSet/consumerDataSet must be lists")
        groups = []
        for p in producers:
            if not isinstance(p, dict) or not isinstance(p.get("groupName"), str) or not p["groupName"]:
                raise ProtocolError("heartbeat: producer data without a groupName")
            groups.append(p["groupName"])
        fingerprint = obj.get("heartbeatFingerprint", 0)
        return cls(
            client_id=obj["clientID"],
            producer_groups=tuple(groups),
            consumers=tuple(ConsumerData.from_json(c) for c in consumers),
            heartbeat_fingerprint=fingerprint if isinstance(fingerprint, int) else 0,
            without_sub=bool(obj.get("withoutSub", False)),
            client_addr=_client_addr(obj.get("clientAddr")),
        )


def _client_addr(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > 300:
        raise ProtocolError("heartbeat: clientAddr must be a non-empty string")
    return raw


# -- client channels ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _ClientChannel:
    channel: ChannelLike
    client_id: str
    language: str
    version: int
    last_update_ms: int
    #: The client's own address when a proxy heartbeats for it (``clientAddr``); else the channel's peer.
    client_addr: str | None = None

    @property
    def addr(self) -> str:
        return self.client_addr or self.channel.remote_addr


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A connected client as admin bodies show it (ConsumerConnection.connectionSet, producer table)."""

    client_id: str
    client_addr: str  # "host:port"
    language: str
    version: int
    last_update_ms: int

    def to_connection_json(self) -> dict[str, Any]:
        return {
            "clientAddr": self.client_addr,
            "clientId": self.client_id,
            "language": self.language,
            "version": self.version,
        }


def _info(c: _ClientChannel) -> ClientInfo:
    return ClientInfo(c.client_id, c.addr, c.language, c.version, c.last_update_ms)


@dataclass(frozen=True, slots=True)
class ExpiredClient:
    """A client removed by a scan: the caller closes ``channel``."""

    group: str
    client_id: str
    channel: ChannelLike


@dataclass(frozen=True, slots=True)
class RegisterResult:
    new_channel: bool  # the channel joined the group
    subscriptions_changed: bool  # a topic was added/removed or a subscription replaced by a newer one

    @property
    def changed(self) -> bool:
        return self.new_channel or self.subscriptions_changed


@dataclass(frozen=True, slots=True)
class ConsumerGroupSnapshot:
    """A consumer group as GET_CONSUMER_CONNECTION_LIST and admin tools show it."""

    group: str
    consume_type: ConsumeType
    message_model: MessageModel
    consume_from_where: ConsumeFromWhere
    members: tuple[ClientInfo, ...]
    subscriptions: Mapping[str, SubscriptionData]

    def to_consumer_connection_json(self) -> dict[str, Any]:
        """The ``ConsumerConnection`` body (remoting-protocol §2.7, code 203)."""
        return {
            "connectionSet": [m.to_connection_json() for m in self.members],
            "consumeFromWhere": self.consume_from_where.value,
            "consumeType": self.consume_type.value,
            "messageModel": self.message_model.value,
            "subscriptionTable": {t: s.to_json() for t, s in sorted(self.subscriptions.items())},
        }


#: ``on_change(group, channels)``: the group's membership or subscriptions changed; notify these channels.
ConsumerIdsChangeListener = Callable[[str, list[ChannelLike]], None]


@dataclass(slots=True)
class _ConsumerGroup:
    consume_type: ConsumeType
    message_model: MessageModel
    consume_from_where: ConsumeFromWhere
    notify_enabled: bool = True
    #: (channel id, client id) → member. One channel normally carries one client; a proxy's channel carries
    #: every gRPC consumer it heartbeats for, each under its own client id.
    channels: dict[tuple[int, str], _ClientChannel] = field(default_factory=dict)

    def distinct_channels(self) -> list[ChannelLike]:
        return list({c.channel.id: c.channel for c in self.channels.values()}.values())

    subscriptions: dict[str, SubscriptionData] = field(default_factory=dict)

    def update_subscriptions(self, subs: Iterable[SubscriptionData]) -> bool:
        changed = False
        topics: set[str] = set()
        for sub in subs:
            topics.add(sub.topic)
            old = self.subscriptions.get(sub.topic)
            if old is None or sub.sub_version > old.sub_version:
                self.subscriptions[sub.topic] = sub
                # Upstream counts only a new topic (or a removed one) as a change; a newer version of an
                # existing subscription is stored silently.
                changed = changed or old is None
        for topic in [t for t in self.subscriptions if t not in topics]:
            del self.subscriptions[topic]
            changed = True
        return changed


class ConsumerManager:
    """Online consumer groups: who is connected, with which subscriptions."""

    def __init__(
        self, broker_config: BrokerConfig, on_change: ConsumerIdsChangeListener | None = None
    ) -> None:
        self.broker_config = broker_config
        self.on_change = on_change
        self._groups: dict[str, _ConsumerGroup] = {}
        # Subscriptions seen only in pulls (pull consumers, proxies): group → topic → (sub, last seen ms).
        self._compensated: dict[str, dict[str, tuple[SubscriptionData, int]]] = {}
        #: Times a group was told to rebalance (NOTIFY_CONSUMER_IDS_CHANGED sent to its members).
        self.notifications = 0

    # -- registration ----------------------------------------------------------------------------------
    def register_consumer(
        self,
        group: str,
        channel: ChannelLike,
        client_id: str,
        language: str,
        version: int,
        consume_type: ConsumeType,
        message_model: MessageModel,
        consume_from_where: ConsumeFromWhere,
        subscriptions: Iterable[SubscriptionData],
        now_ms: int,
        *,
        notify_enabled: bool = True,
        update_subscription: bool = True,
        client_addr: str | None = None,
    ) -> RegisterResult:
        """Register or refresh a consumer from a heartbeat; notifies the group when something changed.

        ``notify_enabled`` is the group config's ``notifyConsumerIdsChangedEnable``;
        ``update_subscription=False`` for a heartbeat-v2 ``withoutSub`` (keep the known subscriptions);
        ``client_addr`` the address a proxy reports for the client it heartbeats for.
        """
        info = self._groups.get(group)
        if info is None:
            info = self._groups[group] = _ConsumerGroup(consume_type, message_model, consume_from_where)
        info.consume_type, info.message_model, info.consume_from_where = (
            consume_type,
            message_model,
            consume_from_where,
        )
        info.notify_enabled = notify_enabled
        key = (channel.id, client_id)
        current = info.channels.get(key)
        new_channel = current is None
        if current is None:
            current = info.channels[key] = _ClientChannel(
                channel, client_id, language, version, now_ms, client_addr
            )
            log.info(
                "consumer %s joined group %s from %s",
                client_id,
                group,
                current.addr,
                extra={"event": "consumer_joined", "group": group, "client_id": client_id},
            )
        else:
            current.last_update_ms = now_ms
            current.language, current.version, current.client_addr = language, version, client_addr
        subs_changed = info.update_subscriptions(subscriptions) if update_subscription else False
        result = RegisterResult(new_channel, subs_changed)
        if result.changed:
            self._notify(group, info)
        return result

    def unregister_consumer(self, group: str, channel: ChannelLike, client_id: str) -> bool:
        """UNREGISTER_CLIENT: remove the client of this channel from the group; True if it was there."""
        info = self._groups.get(group)
        if info is None or info.channels.pop((channel.id, client_id), None) is None:
            return False
        log.info(
            "consumer %s on %s left group %s",
            client_id,
            channel.remote_addr,
            group,
            extra={"event": "consumer_left", "group": group, "client_id": client_id},
        )
        self._after_removal(group, info)
        return True

    def channel_closed(self, channel: ChannelLike) -> list[str]:
        """The connection is gone: remove it from every group; the groups it was in."""
        left = []
        for group, info in list(self._groups.items()):
            mine = [key for key in info.channels if key[0] == channel.id]
            for key in mine:
                del info.channels[key]
            if mine:
                left.append(group)
                self._after_removal(group, info)
        return left

    def scan_expired(self, now_ms: int) -> list[ExpiredClient]:
        """Remove clients silent for more than ``channelExpiredTimeout``; the caller closes their channels.

        Also forgets pull-only (compensated) subscriptions unseen for ``subscriptionExpiredTimeout``.
        """
        timeout = self.broker_config.channel_expired_timeout
        expired: list[ExpiredClient] = []
        for group, info in list(self._groups.items()):
            gone = [c for c in info.channels.values() if now_ms - c.last_update_ms > timeout]
            for c in gone:
                del info.channels[(c.channel.id, c.client_id)]
                log.warning(
                    "consumer %s of group %s expired (silent since %d)",
                    c.client_id,
                    group,
                    c.last_update_ms,
                    extra={"event": "consumer_expired", "group": group, "client_id": c.client_id},
                )
                expired.append(ExpiredClient(group, c.client_id, c.channel))
            if gone:
                self._after_removal(group, info)
        sub_timeout = self.broker_config.subscription_expired_timeout
        for group, subs in list(self._compensated.items()):
            for topic in [t for t, (_, seen) in subs.items() if now_ms - seen > sub_timeout]:
                del subs[topic]
            if not subs:
                del self._compensated[group]
        return expired

    def _after_removal(self, group: str, info: _ConsumerGroup) -> None:
        if not info.channels:
            del self._groups[group]
            log.info("consumer group %s has no consumer left", group)
            return
        self._notify(group, info)

    def _notify(self, group: str, info: _ConsumerGroup) -> None:
        if (
            self.on_change is None
            or not info.channels
            or info.message_model is MessageModel.BROADCASTING
            or not info.notify_enabled
            or not self.broker_config.notify_consumer_ids_changed_enable
        ):
            return
        self.notifications += 1
        log.info(
            "group %s changed: rebalance notified to %d consumers",
            group,
            len(info.channels),
            extra={"event": "rebalance", "group": group},
        )
        try:
            self.on_change(group, info.distinct_channels())
        except Exception:
            log.exception("consumer ids change listener failed for group %s", group)

    def compensate_subscription(self, group: str, sub: SubscriptionData, now_ms: int) -> None:
        """Remember a subscription seen in a pull (``compensateSubscribeData``), for groups without heartbeat."""
        self._compensated.setdefault(group, {})[sub.topic] = (sub, now_ms)

    # -- queries ---------------------------------------------------------------------------------------
    def consumer_ids(self, group: str) -> list[str]:
        """GET_CONSUMER_LIST_BY_GROUP: sorted, without duplicates (a reconnecting client may briefly
        hold two channels)."""
        info = self._groups.get(group)
        return sorted({c.client_id for c in info.channels.values()}) if info else []

    def channels(self, group: str) -> list[ChannelLike]:
        info = self._groups.get(group)
        return info.distinct_channels() if info else []

    def find_channel(self, group: str, client_id: str) -> ChannelLike | None:
        """The channel of ``client_id`` in ``group`` (to forward GET_CONSUMER_RUNNING_INFO & co.)."""
        info = self._groups.get(group)
        if info is None:
            return None
        found = [c for c in info.channels.values() if c.client_id == client_id]
        return max(found, key=lambda c: c.last_update_ms).channel if found else None

    def subscription(
        self, group: str, topic: str, *, include_compensated: bool = True
    ) -> SubscriptionData | None:
        """The group's subscription to ``topic``: from heartbeats, else (optionally) from pulls."""
        info = self._groups.get(group)
        if info is not None and topic in info.subscriptions:
            return info.subscriptions[topic]
        if include_compensated:
            seen = self._compensated.get(group, {}).get(topic)
            return seen[0] if seen else None
        return None

    def subscriptions(self, group: str) -> dict[str, SubscriptionData]:
        info = self._groups.get(group)
        return dict(info.subscriptions) if info else {}

    def groups_of_topic(self, topic: str) -> set[str]:
        """Online groups subscribed to ``topic`` (heartbeat subscriptions)."""
        return {g for g, info in self._groups.items() if topic in info.subscriptions}

    def groups(self) -> list[str]:
        return sorted(self._groups)

    def group_info(self, group: str) -> ConsumerGroupSnapshot | None:
        """None when the group has no live consumer (CONSUMER_NOT_ONLINE)."""
        info = self._groups.get(group)
        if info is None:
            return None
        members = tuple(
            sorted((_info(c) for c in info.channels.values()), key=lambda m: (m.client_id, m.client_addr))
        )
        return ConsumerGroupSnapshot(
            group,
            info.consume_type,
            info.message_model,
            info.consume_from_where,
            members,
            dict(info.subscriptions),
        )


# -- producers ----------------------------------------------------------------------------------------------
class ProducerManager:
    """Online producer groups (transaction back-checks pick a channel of the producer group)."""

    def __init__(self, broker_config: BrokerConfig) -> None:
        self.broker_config = broker_config
        self._groups: dict[str, dict[int, _ClientChannel]] = {}
        self._round_robin = itertools.count()

    def register_producer(
        self, group: str, channel: ChannelLike, client_id: str, language: str, version: int, now_ms: int
    ) -> bool:
        """Register or refresh a producer from a heartbeat; True when the channel is new to the group."""
        channels = self._groups.setdefault(group, {})
        current = channels.get(channel.id)
        if current is not None and current.client_id == client_id:
            current.last_update_ms = now_ms
            return False
        channels[channel.id] = _ClientChannel(channel, client_id, language, version, now_ms)
        log.info(
            "producer %s joined group %s from %s",
            client_id,
            group,
            channel.remote_addr,
            extra={"event": "producer_joined", "group": group, "client_id": client_id},
        )
        return current is None

    def unregister_producer(self, group: str, channel: ChannelLike) -> bool:
        channels = self._groups.get(group)
        if channels is None or channels.pop(channel.id, None) is None:
            return False
        if not channels:
            del self._groups[group]
        return True

    def channel_closed(self, channel: ChannelLike) -> list[str]:
        left = [g for g in list(self._groups) if self.unregister_producer(g, channel)]
        return left

    def scan_expired(self, now_ms: int) -> list[ExpiredClient]:
        """Remove producers silent for more than ``channelExpiredTimeout``; the caller closes the channels."""
        timeout = self.broker_config.channel_expired_timeout
        expired = []
        for group, channels in list(self._groups.items()):
            for c in [c for c in channels.values() if now_ms - c.last_update_ms > timeout]:
                del channels[c.channel.id]
                log.warning("producer %s of group %s expired", c.client_id, group)
                expired.append(ExpiredClient(group, c.client_id, c.channel))
            if not channels:
                del self._groups[group]
        return expired

    def group_online(self, group: str) -> bool:
        return bool(self._groups.get(group))

    def channels(self, group: str) -> list[ChannelLike]:
        return [c.channel for c in self._groups.get(group, {}).values()]

    def available_channel(self, group: str) -> ChannelLike | None:
        """One channel of the group, rotating (CHECK_TRANSACTION_STATE target)."""
        channels = self.channels(group)
        return channels[next(self._round_robin) % len(channels)] if channels else None

    def find_channel(self, client_id: str) -> ChannelLike | None:
        for channels in self._groups.values():
            for c in channels.values():
                if c.client_id == client_id:
                    return c.channel
        return None

    def producer_table(self) -> dict[str, list[ClientInfo]]:
        return {g: [_info(c) for c in chans.values()] for g, chans in sorted(self._groups.items())}


# -- orderly-consumer queue locks ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class MessageQueue:
    topic: str  # topic
    broker_name: str  # brokerName
    queue_id: int  # queueId

    def to_json(self) -> dict[str, Any]:
        return {"brokerName": self.broker_name, "queueId": self.queue_id, "topic": self.topic}

    @classmethod
    def from_json(cls, obj: object) -> MessageQueue:
        if not isinstance(obj, dict):
            raise ProtocolError(f"message queue must be an object, got {obj!r}")
        topic, broker, qid = obj.get("topic"), obj.get("brokerName"), obj.get("queueId")
        if (
            not isinstance(topic, str)
            or not isinstance(broker, str)
            or isinstance(qid, bool)
            or not isinstance(qid, int)
        ):
            raise ProtocolError(f"bad message queue {obj!r}")
        return cls(topic, broker, qid)


class RebalanceLockManager:
    """LOCK_BATCH_MQ / UNLOCK_BATCH_MQ: a queue of a group is locked by one client until it stops renewing."""

    def __init__(self, lock_max_live_time_ms: int = 60_000) -> None:
        self.lock_max_live_time_ms = lock_max_live_time_ms  # rocketmq.broker.rebalance.lockMaxLiveTime
        self._locks: dict[str, dict[MessageQueue, tuple[str, int]]] = {}

    def _expired(self, last_update_ms: int, now_ms: int) -> bool:
        return now_ms - last_update_ms > self.lock_max_live_time_ms

    def try_lock_batch(
        self, group: str, mqs: Iterable[MessageQueue], client_id: str, now_ms: int
    ) -> set[MessageQueue]:
        """Lock (or renew) each queue for ``client_id``; the queues it now holds. A queue held by another
        live client is left out; an expired lock is taken over."""
        table = self._locks.setdefault(group, {})
        locked = set()
        for mq in mqs:
            holder = table.get(mq)
            if holder is not None and holder[0] != client_id and not self._expired(holder[1], now_ms):
                log.warning("group %s: %s is locked by %s, not %s", group, mq, holder[0], client_id)
                continue
            if holder is not None and holder[0] != client_id:
                log.warning("group %s: %s taken over from expired %s by %s", group, mq, holder[0], client_id)
            table[mq] = (client_id, now_ms)
            locked.add(mq)
        return locked

    def unlock_batch(self, group: str, mqs: Iterable[MessageQueue], client_id: str) -> set[MessageQueue]:
        """Release the queues ``client_id`` holds; queues held by others are left alone. Returns released."""
        table = self._locks.get(group, {})
        released = set()
        for mq in mqs:
            holder = table.get(mq)
            if holder is not None and holder[0] == client_id:
                del table[mq]
                released.add(mq)
        if not table:
            self._locks.pop(group, None)
        return released

    def lock_owner(self, group: str, mq: MessageQueue, now_ms: int) -> str | None:
        holder = self._locks.get(group, {}).get(mq)
        return holder[0] if holder is not None and not self._expired(holder[1], now_ms) else None

    def is_locked(self, group: str, mq: MessageQueue, client_id: str, now_ms: int) -> bool:
        return self.lock_owner(group, mq, now_ms) == client_id

    def is_lock_all_expired(self, group: str, now_ms: int) -> bool:
        return all(self._expired(ts, now_ms) for _, ts in self._locks.get(group, {}).values())

    def scan_expired(self, now_ms: int) -> int:
        """Drop expired locks (housekeeping); how many were dropped."""
        dropped = 0
        for group, table in list(self._locks.items()):
            for mq in [mq for mq, (_, ts) in table.items() if self._expired(ts, now_ms)]:
                del table[mq]
                dropped += 1
            if not table:
                del self._locks[group]
        return dropped


# -- subscription group configs ------------------------------------------------------------------------------
_GROUP_FIELDS: Final = {
    "groupName": "group_name",
    "consumeEnable": "consume_enable",
    "consumeFromMinEnable": "consume_from_min_enable",
    "consumeBroadcastEnable": "consume_broadcast_enable",
    "consumeMessageOrderly": "consume_message_orderly",
    "retryQueueNums": "retry_queue_nums",
    "retryMaxTimes": "retry_max_times",
    "brokerId": "broker_id",
    "whichBrokerWhenConsumeSlowly": "which_broker_when_consume_slowly",
    "notifyConsumerIdsChangedEnable": "notify_consumer_ids_changed_enable",
    "groupSysFlag": "group_sys_flag",
    "consumeTimeoutMinute": "consume_timeout_minute",
}


@dataclass(frozen=True, slots=True)
class SubscriptionGroupConfig:
    """A consumer group's broker-side settings (``subscriptionGroup.json``, UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)."""

    group_name: str  # groupName
    consume_enable: bool = True  # consumeEnable
    consume_from_min_enable: bool = True  # consumeFromMinEnable
    consume_broadcast_enable: bool = True  # consumeBroadcastEnable
    consume_message_orderly: bool = False  # consumeMessageOrderly (FIFO group)
    retry_queue_nums: int = 1  # retryQueueNums
    retry_max_times: int = 16  # retryMaxTimes (maxReconsumeTimes)
    broker_id: int = 0  # brokerId
    which_broker_when_consume_slowly: int = 1  # whichBrokerWhenConsumeSlowly
    notify_consumer_ids_changed_enable: bool = True  # notifyConsumerIdsChangedEnable
    group_sys_flag: int = 0  # groupSysFlag
    consume_timeout_minute: int = 15  # consumeTimeoutMinute
    attributes: Mapping[str, str] = field(default_factory=dict)  # attributes
    #: Upstream fields OrbitMQ does not use (groupRetryPolicy, subscriptionDataSet), kept for round trips.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for json_name, attr in _GROUP_FIELDS.items():
            out[json_name] = getattr(self, attr)
        out["attributes"] = dict(self.attributes)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SubscriptionGroupConfig:
        """Parse upstream's JSON; ValueError for a wrong field type."""
        kwargs: dict[str, Any] = {}
        for json_name, attr in _GROUP_FIELDS.items():
            if json_name not in obj:
                continue
            value = obj[json_name]
            default = getattr(_DEFAULT_GROUP, attr)
            if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default)):
                raise ValueError(
                    f"subscription group field {json_name}: expected {type(default).__name__}, got {value!r}"
                )
            kwargs[attr] = value
        if not kwargs.get("group_name"):
            raise ValueError(f"subscription group without groupName: {obj!r}")
        attributes = obj.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise ValueError("subscription group attributes must be an object")
        extra = {k: v for k, v in obj.items() if k not in _GROUP_FIELDS and k != "attributes"}
        return cls(**kwargs, attributes={str(k): str(v) for k, v in attributes.items()}, extra=extra)


_DEFAULT_GROUP: Final = SubscriptionGroupConfig(group_name="")

#: Groups every broker has (MixAll): tools, filter server, self test, ONS proxies, transaction check.
_SYSTEM_GROUPS: Final = (
    "TOOLS_CONSUMER",
    "FILTERSRV_CONSUMER",
    "SELF_TEST_C_GROUP",
    "CID_ONS-HTTP-PROXY",
    "CID_ONSAPI_PULL",
    "CID_ONSAPI_PERMISSION",
    "CID_ONSAPI_OWNER",
    "CID_RMQ_SYS_TRANS",
)
CID_RMQ_SYS_PREFIX: Final = "CID_RMQ_SYS_"


class SubscriptionGroupManager(JsonConfigManager):
    """Consumer group configs, persisted as ``<root>/config/subscriptionGroup.json``.

    No I/O on construction; call :meth:`load`. Changes mark the file dirty: persist with
    ``await manager.persist_async()`` or a :class:`~orbitmq.broker.persist.PersistService`.
    """

    name = "subscriptionGroup"

    def __init__(
        self, root_dir: str, broker_config: BrokerConfig, clock: Clock, file_ops: FileOps | None = None
    ) -> None:
        super().__init__(os.path.join(root_dir, "config", "subscriptionGroup.json"), clock, file_ops)
        self.broker_config = broker_config
        self.data_version = DataVersion(timestamp=clock.now_ms())
        self._table: dict[str, SubscriptionGroupConfig] = {
            name: SubscriptionGroupConfig(name) for name in _SYSTEM_GROUPS
        }
        #: group → topic → forbidden perm bits (PermName index bits), as upstream's forbiddenTable.
        self._forbidden: dict[str, dict[str, int]] = {}

    def _bump(self) -> None:
        self.data_version = self.data_version.next(self.clock.now_ms())
        self._mark_changed()

    def get(self, group: str) -> SubscriptionGroupConfig | None:
        """The group's config without auto-creating it."""
        return self._table.get(group)

    def contains(self, group: str) -> bool:
        return group in self._table

    def find_subscription_group_config(self, group: str) -> SubscriptionGroupConfig | None:
        """The group's config, auto-created with defaults when ``autoCreateSubscriptionGroup`` (or for a
        ``CID_RMQ_SYS_`` group with ``enableCreateSysGroup``); None = SUBSCRIPTION_GROUP_NOT_EXIST.
        An invalid group name is never created."""
        existing = self._table.get(group)
        if existing is not None:
            return existing
        cfg = self.broker_config
        sys_group = cfg.enable_create_sys_group and group.startswith(CID_RMQ_SYS_PREFIX)
        if not (cfg.auto_create_subscription_group or sys_group) or validate_group(group) is not None:
            return None
        with self._lock:
            created = self._table.setdefault(group, SubscriptionGroupConfig(group))
            self._bump()
        log.info("auto-created subscription group %s", group)
        return created

    def update_subscription_group_config(self, config: SubscriptionGroupConfig) -> SubscriptionGroupConfig:
        """Create or replace a group config (admin); ``BrokerError(INVALID_PARAMETER)`` for a bad name."""
        remark = validate_group(config.group_name)
        if remark is not None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, remark)
        with self._lock:
            old = self._table.get(config.group_name)
            if old == config:
                return config
            self._table[config.group_name] = config
            self._bump()
        log.info("%s subscription group %s", "updated" if old else "created", config)
        return config

    def delete_subscription_group_config(self, group: str) -> SubscriptionGroupConfig | None:
        with self._lock:
            old = self._table.pop(group, None)
            forbidden = self._forbidden.pop(group, None)
            if old is not None or forbidden is not None:
                self._bump()
        if old is not None:
            log.info("deleted subscription group %s", old)
        return old

    def all_configs(self) -> dict[str, SubscriptionGroupConfig]:
        with self._lock:
            return dict(self._table)

    # -- forbidden (per group and topic, PermName index bits) ----------------------------------------
    def forbidden(self, group: str, topic: str) -> int:
        return max(0, self._forbidden.get(group, {}).get(topic, 0))

    def is_forbidden(self, group: str, topic: str, perm_index: int) -> bool:
        bit = 1 << perm_index
        return self.forbidden(group, topic) & bit == bit

    def update_forbidden(self, group: str, topic: str, perm_index: int, forbid: bool) -> None:
        value = self.forbidden(group, topic)
        value = value | (1 << perm_index) if forbid else value & ~(1 << perm_index)
        with self._lock:
            topics = self._forbidden.setdefault(group, {})
            if value:
                topics[topic] = value
            else:
                topics.pop(topic, None)
                if not topics:
                    del self._forbidden[group]
            self._bump()

    # -- serialisation ---------------------------------------------------------------------------------
    def wrapper_json(self) -> dict[str, Any]:
        """The GET_ALL_SUBSCRIPTIONGROUP_CONFIG body (same shape as the file)."""
        with self._lock:
            return self.encode_obj()

    def encode_obj(self) -> dict[str, Any]:
        return {
            "dataVersion": self.data_version.to_json(),
            "forbiddenTable": {g: dict(t) for g, t in sorted(self._forbidden.items())},
            "subscriptionGroupTable": {g: c.to_json() for g, c in sorted(self._table.items())},
        }

    def decode_obj(self, obj: dict[str, Any]) -> None:
        table = obj.get("subscriptionGroupTable") or {}
        forbidden = obj.get("forbiddenTable") or {}
        if not isinstance(table, dict) or not isinstance(forbidden, dict):
            raise ValueError("subscriptionGroupTable/forbiddenTable must be objects")
        for name, raw in table.items():
            if not isinstance(raw, dict):
                raise ValueError(f"subscription group {name} must be an object")
            self._table[name] = SubscriptionGroupConfig.from_json(
                {**raw, "groupName": raw.get("groupName") or name}
            )
        for group, topics in forbidden.items():
            if not isinstance(topics, dict):
                raise ValueError(f"forbiddenTable of {group} must be an object")
            self._forbidden[group] = {str(t): int(v) for t, v in topics.items()}
        self.data_version = DataVersion.from_json(obj.get("dataVersion"))
