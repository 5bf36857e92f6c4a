"""Clients and groups on the broker (RocketMQ ``ConsumerManager``, ``ProducerManager``), as a functional core
the handlers call. Heartbeat bodies are parsed in :mod:`orbitmq.broker.heartbeat`, orderly-consumer queue
locks live in :mod:`orbitmq.broker.locks`, group configs in :mod:`orbitmq.broker.subscription_groups`.

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
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.filters import SubscriptionData
from orbitmq.broker.heartbeat import ConsumeFromWhere, ConsumeType, MessageModel
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "ChannelLike",
    "ClientInfo",
    "ConsumerGroupSnapshot",
    "ConsumerIdsChangeListener",
    "ConsumerManager",
    "ExpiredClient",
    "ProducerManager",
    "RegisterResult",
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
