"""What the brokers know of the proxy's clients: remoting heartbeats sent on their behalf.

Producers: as in the Java proxy the producer group of every gRPC producer is the topic. The proxy
heart-beats ``producerDataSet=[{groupName: <topic>}]`` to the brokers of each topic a connected producer
publishes to (every ``transactionHeartbeatPeriodSecond``, 20 s), so a broker's CHECK_TRANSACTION_STATE for
a half message (PGROUP = topic) reaches the proxy, which hands it to one of that topic's producers over
Telemetry.

Consumers: each gRPC push or simple consumer is heart-beaten as a member of its group, under its own client
id, to the brokers of the topics it subscribes to (consumeType ``CONSUME_POP``: the proxy consumes by POP).
The heartbeat adds ``clientAddr``, the client's own address, so ``GET_CONSUMER_CONNECTION_LIST`` (and
``orbitmq admin group describe``) shows the real client instead of the proxy's connection; a Java broker
ignores that key. A client that terminates or goes idle is unregistered (UNREGISTER_CLIENT); if the proxy
itself dies, the brokers expire its members after ``channelExpiredTimeout`` like any silent client.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from orbitmq.client.pull import subscription_json
from orbitmq.client.routing import TopicRoute
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.core.service import Service
from orbitmq.protocol.codes import LanguageCode, RequestCode, ResponseCode, error_for
from orbitmq.protocol.command import RemotingCommand
from orbitmq.proxy.backends.base import Backend
from orbitmq.proxy.counters import ProxyCounters
from orbitmq.proxy.metadata import Metadata

__all__ = [
    "HEARTBEAT_PERIOD_S",
    "UNROUTED_RETRY_S",
    "ConsumerMember",
    "ConsumerRegistration",
    "ProducerRegistration",
    "remoting_language",
]

log = logging.getLogger("orbitmq.proxy")

HEARTBEAT_PERIOD_S = 20.0  # transactionHeartbeatPeriodSecond; also how often consumers are re-announced
UNROUTED_RETRY_S = 1.0  # a topic whose route did not exist yet
_TIMEOUT_S = 3.0
#: gRPC ``Language`` names whose remoting ``LanguageCode`` is spelt differently.
_LANGUAGE_NAMES = {"DOT_NET": "DOTNET", "GOLANG": "GO"}


def remoting_language(grpc_language: str) -> str:
    """The remoting LanguageCode name for a gRPC ``Language`` name (``OTHER`` when there is none)."""
    name = _LANGUAGE_NAMES.get(grpc_language, grpc_language)
    return name if name in LanguageCode.__members__ else LanguageCode.OTHER.name


async def _brokers_of(metadata: Metadata, topics: Iterable[str], what: str) -> dict[str, set[str]]:
    """broker name → the topics among ``topics`` it serves; topics without a route are left out."""
    by_broker: dict[str, set[str]] = collections.defaultdict(set)
    for topic in sorted(set(topics)):
        try:
            route: TopicRoute = await metadata.route(topic)
        except (BrokerError, ClientError) as exc:
            log.debug("no route for %s topic %s yet: %s", what, topic, exc)
            continue
        for name in route.broker_addrs:
            by_broker[name].add(topic)
    return by_broker


async def _invoke(backend: Backend, broker: str, cmd: RemotingCommand) -> None:
    resp = await backend.invoke(broker, cmd, _TIMEOUT_S)
    if resp.code != ResponseCode.SUCCESS:
        raise error_for(resp.code, resp.remark or "")


def _heartbeat(body: dict[str, Any], language: str = "PYTHON") -> RemotingCommand:
    cmd = RemotingCommand.request(RequestCode.HEART_BEAT, {}, orjson.dumps(body))
    cmd.language = language
    return cmd


class ProducerRegistration(Service):
    """Keeps the proxy registered as producer (group = topic) on the brokers of every topic that a
    connected gRPC producer publishes to, so brokers can send it transaction checks."""

    def __init__(
        self, backend: Backend, metadata: Metadata, clock: Clock, client_id: str | None = None
    ) -> None:
        super().__init__("proxy producer registration")
        self.backend, self.metadata, self.clock = backend, metadata, clock
        self.client_id = client_id or f"proxy@{os.getpid()}"
        self._topics: collections.Counter[str] = collections.Counter()
        self._registered: set[str] = set()

    def add_topics(self, topics: list[str]) -> None:
        new = [t for t in topics if t not in self._registered]
        self._topics.update(topics)
        if new:
            self.wakeup()

    def remove_topics(self, topics: list[str]) -> None:
        self._topics.subtract(topics)
        for topic in [t for t, n in self._topics.items() if n <= 0]:
            del self._topics[topic]

    async def run(self) -> None:
        while not self.stopping:
            await self.heartbeat_all()
            # A topic without a route yet (created by the producer's first send) is retried soon, not after a
            # whole period: until it is registered the brokers cannot check its orphaned transactions.
            pending = any(t not in self._registered for t in self._topics)
            await self.wait_for_wakeup(UNROUTED_RETRY_S if pending else HEARTBEAT_PERIOD_S)

    async def heartbeat_all(self) -> None:
        by_broker = await _brokers_of(self.metadata, self._topics, "producer")
        results = await asyncio.gather(
            *(self._heartbeat(name, groups) for name, groups in by_broker.items()), return_exceptions=True
        )
        for name, result in zip(by_broker, results, strict=True):
            if isinstance(result, BaseException):
                log.info("producer heartbeat to %s failed: %s", name, result)
            else:
                self._registered |= by_broker[name]

    async def _heartbeat(self, broker_name: str, groups: set[str]) -> None:
        producers = [{"groupName": g} for g in sorted(groups)]
        body = {"clientID": self.client_id, "producerDataSet": producers, "consumerDataSet": []}
        await _invoke(self.backend, broker_name, _heartbeat(body))


@dataclass(slots=True)
class ConsumerMember:
    """One gRPC consumer as its group's brokers see it."""

    client_id: str
    group: str
    #: topic → (expression type, expression): from its settings and from what it receives.
    subscriptions: dict[str, tuple[str, str]]
    client_addr: str = ""
    language: str = "OTHER"
    #: Brokers that accepted its last heartbeat (to unregister from) and the topics they serve for it.
    brokers: set[str] = field(default_factory=set)
    routed: set[str] = field(default_factory=set)
    sub_version: int = 0

    def heartbeat_body(self) -> dict[str, Any]:
        subs = [subscription_json(t, expr, kind, self.sub_version)
                for t, (kind, expr) in sorted(self.subscriptions.items())]  # fmt: skip
        consumer = {"groupName": self.group, "consumeType": "CONSUME_POP", "messageModel": "CLUSTERING",
                    "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET", "subscriptionDataSet": subs,
                    "unitMode": False}  # fmt: skip
        body: dict[str, Any] = {
            "clientID": self.client_id,
            "producerDataSet": [],
            "consumerDataSet": [consumer],
        }
        if self.client_addr:
            body["clientAddr"] = self.client_addr
        return body


class ConsumerRegistration(Service):
    """Heart-beats every gRPC consumer to the brokers of its topics: at once when it appears or its
    subscriptions change, then every :data:`HEARTBEAT_PERIOD_S`; unregisters those that are gone."""

    def __init__(self, backend: Backend, metadata: Metadata, clock: Clock, counters: ProxyCounters) -> None:
        super().__init__("proxy consumer registration")
        self.backend, self.metadata, self.clock, self.counters = backend, metadata, clock, counters
        self._members: dict[str, ConsumerMember] = {}
        self._dirty: set[str] = set()
        self._gone: list[ConsumerMember] = []
        self._next_round = 0.0

    def member(self, client_id: str) -> ConsumerMember | None:
        return self._members.get(client_id)

    def update(
        self,
        client_id: str,
        group: str,
        subscriptions: dict[str, tuple[str, str]],
        *,
        client_addr: str = "",
        language: str = "OTHER",
    ) -> None:
        """The client's settings name ``group`` and these subscriptions (topic → (type, expression))."""
        m = self._members.get(client_id)
        if m is not None and m.group != group:
            self.remove(client_id)  # a client that changed its group leaves the old one
            m = None
        if m is None:
            m = self._members[client_id] = ConsumerMember(client_id, group, {})
        changed = m.subscriptions != subscriptions or (client_addr and m.client_addr != client_addr)
        m.subscriptions = dict(subscriptions)
        m.client_addr, m.language = client_addr or m.client_addr, language
        if changed:
            m.sub_version = self.clock.now_ms()
            self._mark(client_id)

    def receiving(
        self, client_id: str, group: str, topic: str, kind: str, expression: str, client_addr: str = ""
    ) -> None:
        """A receive: a topic the client's settings did not name (or a new filter) is added to it. A receive
        for another group than its settings name does not move the client (official clients never do it)."""
        m = self._members.get(client_id)
        if m is None:
            self.update(client_id, group, {topic: (kind, expression)}, client_addr=client_addr)
        elif m.group == group and m.subscriptions.get(topic) != (kind, expression):
            m.subscriptions[topic] = (kind, expression)
            m.sub_version = self.clock.now_ms()
            self._mark(client_id)

    def remove(self, client_id: str) -> None:
        m = self._members.pop(client_id, None)
        self._dirty.discard(client_id)
        if m is not None and m.brokers:
            self._gone.append(m)
            self.wakeup()

    def _mark(self, client_id: str) -> None:
        self._dirty.add(client_id)
        self.wakeup()

    async def run(self) -> None:
        while not self.stopping:
            await self.round()
            unrouted = any(set(m.subscriptions) - m.routed for m in self._members.values())
            wait = UNROUTED_RETRY_S if unrouted else max(0.0, self._next_round - self.clock.monotonic())
            await self.wait_for_wakeup(wait)

    async def on_stop(self) -> None:
        """The proxy stops: its consumers leave their groups now rather than when the brokers expire them
        (in local mode the proxy's connection to the broker never closes)."""
        for client_id in list(self._members):
            self.remove(client_id)
        gone, self._gone = self._gone, []
        await asyncio.gather(*(self._unregister(m) for m in gone))

    async def round(self) -> None:
        """Unregister the gone, heart-beat the changed (or, once a period, everybody)."""
        gone, self._gone = self._gone, []
        if self.clock.monotonic() >= self._next_round:
            due = list(self._members.values())
            self._next_round = self.clock.monotonic() + HEARTBEAT_PERIOD_S
        else:
            due = [m for c, m in self._members.items() if c in self._dirty or set(m.subscriptions) - m.routed]
        self._dirty.clear()
        await asyncio.gather(*(self._unregister(m) for m in gone), *(self._heartbeat(m) for m in due))

    async def _heartbeat(self, m: ConsumerMember) -> None:
        by_broker = await _brokers_of(self.metadata, m.subscriptions, "consumer")
        names = list(by_broker)
        cmd_body = m.heartbeat_body()
        results = await asyncio.gather(
            *(_invoke(self.backend, name, _heartbeat(cmd_body, m.language)) for name in names),
            return_exceptions=True,
        )
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                self.counters.registration_failures += 1
                log.info("consumer heartbeat of %s (%s) to %s failed: %s", m.client_id, m.group, name, result)
            else:
                m.brokers.add(name)
                m.routed |= by_broker[name]

    async def _unregister(self, m: ConsumerMember) -> None:
        fields = {"clientID": m.client_id, "consumerGroup": m.group}
        for name in sorted(m.brokers):
            try:
                await _invoke(
                    self.backend, name, RemotingCommand.request(RequestCode.UNREGISTER_CLIENT, fields)
                )
            except (BrokerError, ClientError) as exc:
                self.counters.registration_failures += 1
                log.info("unregistering %s (%s) from %s failed: %s", m.client_id, m.group, name, exc)
