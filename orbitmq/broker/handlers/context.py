"""What every broker request handler works with: the broker's state, store and services, in one object.

:class:`BrokerContext` is built by :class:`orbitmq.broker.app.BrokerApp`; handlers read it and call the
managers it holds. :class:`ClientChannel` adapts a network connection to the managers' ``ChannelLike``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.groups import ConsumerManager, ProducerManager
from orbitmq.broker.locks import RebalanceLockManager
from orbitmq.broker.longpoll import PullRequestHoldService
from orbitmq.broker.offsets import ConsumerOffsetManager
from orbitmq.broker.rates import BrokerRates
from orbitmq.broker.schedule import DelayOffsetManager
from orbitmq.broker.stats import BrokerStats
from orbitmq.broker.subscription_groups import SubscriptionGroupManager
from orbitmq.broker.topics import TopicConfigManager
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ClientError
from orbitmq.net.connection import Connection
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import UniqueIdGenerator
from orbitmq.store.api import MessageStore

__all__ = ["BrokerContext", "ClientChannel", "channel_of", "java_fields"]

log = logging.getLogger("orbitmq.broker")

_CHANNEL_KEY = "orbitmq.broker.channel"


class ClientChannel:
    """A client connection as the group managers see it (``groups.ChannelLike``): one per connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def id(self) -> int:
        return self.conn.id

    @property
    def remote_addr(self) -> str:
        host, port = self.conn.remote_addr
        return f"{host}:{port}"

    def send_oneway(self, cmd: RemotingCommand) -> None:
        try:
            self.conn.send_oneway(cmd)
        except ClientError as exc:  # closed meanwhile: the close callback cleans up
            log.debug("oneway code %d to %s not sent: %s", cmd.code, self.remote_addr, exc)

    def close(self) -> None:
        self.conn.close()

    def __repr__(self) -> str:
        return f"<ClientChannel #{self.id} {self.remote_addr}>"


def channel_of(conn: Connection) -> ClientChannel:
    """The one :class:`ClientChannel` of ``conn`` (made on first use, kept in its attributes)."""
    ch = conn.attributes.get(_CHANNEL_KEY)
    if not isinstance(ch, ClientChannel):
        ch = ClientChannel(conn)
        conn.attributes[_CHANNEL_KEY] = ch
    return ch


def java_fields(**values: object) -> dict[str, str]:
    """Response ext fields the Java way: ``True`` → ``"true"``, numbers in decimal, None left out."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


async def _registered(_timeout_s: float) -> bool:
    return True


@dataclass(eq=False)
class BrokerContext:
    """The broker as its handlers see it."""

    config: BrokerConfig
    clock: Clock
    store: MessageStore
    topics: TopicConfigManager
    subscription_groups: SubscriptionGroupManager
    offsets: ConsumerOffsetManager
    consumers: ConsumerManager
    producers: ProducerManager
    locks: RebalanceLockManager
    delay_offsets: DelayOffsetManager
    long_polling: PullRequestHoldService
    #: ``brokerIP1:port`` as registered with the NameServers (known once the server listens).
    address: str
    #: Store host written into records (IPv4, port).
    store_host: tuple[str, int]
    #: ``messageDelayLevel`` parsed: delay of level n is ``delay_levels_ms[n - 1]``.
    delay_levels_ms: tuple[int, ...]
    #: Register with the NameServers now, waiting at most the given seconds; True if all accepted.
    register_now: Callable[[float], Awaitable[bool]] = field(repr=False, default=_registered)
    uniq_ids: UniqueIdGenerator = field(default_factory=UniqueIdGenerator, repr=False)
    boot_timestamp_ms: int = 0
    #: Messages stored / sent to pullers per second (GET_BROKER_RUNTIME_INFO); None = not measured.
    rates: BrokerRates | None = None
    #: Put a new config in effect everywhere (UPDATE_BROKER_CONFIG); None = run-time changes refused.
    reconfigure: Callable[[BrokerConfig], None] | None = field(repr=False, default=None)
    #: Traffic counters the metrics exporter reads.
    stats: BrokerStats = field(default_factory=BrokerStats, repr=False)

    @property
    def now_ms(self) -> int:
        return self.clock.now_ms()
