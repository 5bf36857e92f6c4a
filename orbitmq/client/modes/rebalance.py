"""The mode-aware rebalance of a push consumer (docs/pop-rebalance.md).

A group's topics are PULL (classic: each queue owned by one member, balanced on the client) or POP (the
broker assigns queues with upstream's ``allocate4Pop`` and members pop them). What this client believes
each topic is lives in a :class:`~orbitmq.client.modes.cache.RequestModeCache`, fed only by successful
answers and 403 pushes (see :mod:`orbitmq.client.modes.cache`).

The policies (``RebalancePolicy``): ``MIXED`` (OrbitMQ: POP topics from the broker, the rest balanced
locally), ``BROKER`` (upstream's ``clientRebalance=false``: every topic through QUERY_ASSIGNMENT on every
round, kept for comparison) and ``LOCAL`` (every topic balanced locally; modes ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import orjson

from orbitmq.client.allocate import AllocateStrategy
from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import RETRY_PREFIX, MessageExt, MessageQueue
from orbitmq.client.modes.cache import RequestModeCache
from orbitmq.client.modes.model import PULL_MODE, RebalancePolicy, TopicMode, pop_retry_topics
from orbitmq.client.modes.wire import (
    Assignment,
    mode_table_fields,
    parse_assignment,
    parse_mode_push,
    parse_mode_table,
)
from orbitmq.client.routing import TopicRoute
from orbitmq.core.errors import ClientError, OrbitError, ProtocolError
from orbitmq.net import Connection
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["ModeAwareRebalance", "PopAssignee", "RebalanceCounters", "RebalanceHost"]

# The package's name, as before the split, so log filters and configurations keep matching.
log = logging.getLogger("orbitmq.client.modes")


class RebalanceHost(Protocol):
    """What :class:`ModeAwareRebalance` needs of its consumer (``ConsumerBase`` has all of it)."""

    group: str
    instance: ClientInstance
    subscriptions: dict[str, str]
    allocate: AllocateStrategy

    @property
    def client_id(self) -> str: ...

    async def update_queues(self, topic: str, mine: set[MessageQueue]) -> bool:
        """Pull exactly ``mine`` of ``topic`` (an empty set gives every queue of the topic away)."""
        ...

    def request_rebalance(self) -> None: ...


class PopAssignee(Protocol):
    """The consumer's POP side (:mod:`orbitmq.client.popconsume`)."""

    async def assign(self, topic: str, queues: set[MessageQueue], mode: TopicMode) -> None:
        """Pop exactly ``queues`` of ``topic`` (an empty set stops popping it; in-flight messages finish)."""
        ...


@dataclass
class RebalanceCounters:
    """Requests this client sent for rebalancing, by kind (the benchmark and metrics read them)."""

    consumer_lists: int = 0  # GET_CONSUMER_LIST_BY_GROUP
    assignment_queries: int = 0  # QUERY_ASSIGNMENT
    assignment_failures: int = 0
    mode_reads: int = 0  # GET_ALL_MESSAGE_REQUEST_MODE
    mode_read_failures: int = 0
    pushes: int = 0  # 403 received
    rounds: int = 0

    @property
    def requests(self) -> int:
        return self.consumer_lists + self.assignment_queries + self.mode_reads


@dataclass(frozen=True, slots=True)
class _PopInputs:
    """What a POP topic's last assignment was computed from: while these hold, asking again is useless."""

    cids: tuple[str, ...]
    queues: frozenset[MessageQueue]
    mode: TopicMode
    at: float  # clock() when asked


_STRATEGY_NAMES: Final = {"averagely": "AVG", "averagely_by_circle": "AVG_BY_CIRCLE"}


class ModeAwareRebalance:
    """One consumer's rebalance under a :class:`RebalancePolicy`; see the module docstring."""

    def __init__(
        self,
        host: RebalanceHost,
        policy: RebalancePolicy,
        pop: PopAssignee,
        *,
        reconcile_interval_s: float = 30.0,
        pop_refresh_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.policy, self.pop = host, policy, pop
        self.reconcile_interval_s = reconcile_interval_s
        self.pop_refresh_s = pop_refresh_s
        self.clock = clock
        self.cache = RequestModeCache()
        self.counters = RebalanceCounters()
        self.drain_topics: set[str] = set()  # POP retry topics pulled after a topic went back to PULL
        self._inputs: dict[str, _PopInputs] = {}
        self._dirty: set[str] = set()  # POP topics to ask about at the next round
        self._last_reconcile: float | None = None
        #: POP retry topic → the topic it belongs to, for topics that went back to PULL.
        self._drain_wanted: dict[str, str] = {}
        self.drain_origins: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self.strategy_name = _STRATEGY_NAMES.get(getattr(host.allocate, "__name__", ""), "AVG")
        host.instance.dispatch.register(
            RequestCode.NOTIFY_MESSAGE_REQUEST_MODE_CHANGED, self.on_push, replace=True
        )

    # -- entry points -------------------------------------------------------------------------------------
    async def rebalance(self) -> bool:
        """One round; False when something must be tried again soon (the host retries after ~1 s)."""
        async with self._lock:
            self.counters.rounds += 1
            if self.policy is RebalancePolicy.BROKER:
                return await self._broker_round()
            return await self._mixed_round()

    async def on_push(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        """NOTIFY_MESSAGE_REQUEST_MODE_CHANGED: update the cache and rebalance at once."""
        try:
            push = parse_mode_push(cmd)
        except ProtocolError as exc:
            log.warning("%s: malformed mode push from %r: %s", self.host.group, conn, exc)
            return None
        if push.group != self.host.group or self.policy is not RebalancePolicy.MIXED:
            return None
        self.counters.pushes += 1
        async with self._lock:
            old = self.cache.get(push.topic)
            if self.cache.apply_push(push.topic, push.mode):
                await self._mode_changed(push.topic, old, push.mode)
            if push.mode.pop:
                self._dirty.add(push.topic)
        self.host.request_rebalance()
        return None

    # -- reconciliation -----------------------------------------------------------------------------------
    def _topics(self) -> list[str]:
        return [t for t in self.host.subscriptions if not t.startswith(RETRY_PREFIX)]

    async def reconcile(self) -> None:
        """Read this group's modes from every broker of the subscribed topics (and subscribe to their
        pushes); a broker that does not answer leaves its topics as they were."""
        token = self.cache.begin_read()
        tables: dict[str, tuple[dict[str, TopicMode], TopicMode]] = {}
        unsupported: set[str] = set()
        routes = {}
        for topic in self._topics():
            with contextlib.suppress(OrbitError):
                routes[topic] = self.host.instance.routes.get(topic) or await self.host.instance.route(topic)
        for addr in sorted({a for r in routes.values() for a in r.master_addrs()}):
            self.counters.mode_reads += 1
            try:
                resp = await self.host.instance.request(
                    addr, RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, mode_table_fields(self.host.group, True),
                    ok=(ResponseCode.SUCCESS, ResponseCode.REQUEST_CODE_NOT_SUPPORTED),
                )  # fmt: skip
                if resp.code == ResponseCode.SUCCESS:
                    tables[addr] = parse_mode_table(resp, self.host.group)
                else:
                    unsupported.add(addr)
            except OrbitError as exc:
                self.counters.mode_read_failures += 1
                log.info("%s: mode table of %s not read (modes kept): %s", self.host.group, addr, exc)
        for topic, route in routes.items():
            old = self.cache.get(topic)
            source = next((a for a in route.master_addrs() if a in tables), None)
            if source is not None:
                modes, default = tables[source]
            elif old is None and any(a in unsupported for a in route.master_addrs()):
                # A broker without the request (before RocketMQ 5) has no POP: a topic nobody has
                # classified yet is PULL there. A known mode is never changed by such an answer.
                modes, default = {}, PULL_MODE
            else:
                continue
            if self.cache.apply_table(token, [topic], modes, default):
                await self._mode_changed(topic, old, self.cache.get(topic))
            stored = modes.get(topic)
            if stored is not None and not stored.pop:
                # Someone set PULL explicitly: the topic may well have been POP before, possibly while
                # this member was away, and have leftovers in its POP retry topic.
                for name in pop_retry_topics(self.host.group, topic):
                    if name not in self.drain_topics:
                        self._drain_wanted.setdefault(name, topic)
        if tables:
            self._last_reconcile = self.clock()

    def _reconcile_due(self) -> bool:
        last = self._last_reconcile
        return last is None or self.clock() - last >= self.reconcile_interval_s

    async def _mode_changed(self, topic: str, old: TopicMode | None, new: TopicMode | None) -> None:
        if new is None:
            return
        log.info("%s: topic %s is now %s (was %s)", self.host.group, topic, new.mode.value,
                 old.mode.value if old else "unknown")  # fmt: skip
        self._inputs.pop(topic, None)
        if new.pop:
            self._dirty.add(topic)
            # Popping the retry topic is the broker's job now; pulling it too would race the pops.
            for name in pop_retry_topics(self.host.group, topic):
                self._drain_wanted.pop(name, None)
                if name in self.drain_topics:
                    self.drain_topics.discard(name)
                    await self.host.update_queues(name, set())
        elif old is not None and old.pop:
            # The revive moves messages popped but never acked there, possibly after this moment.
            for name in pop_retry_topics(self.host.group, topic):
                self._drain_wanted[name] = topic
            await self._look_for_drain_topics(self._drain_wanted)

    async def _look_for_drain_topics(self, wanted: dict[str, str]) -> None:
        """Pull those of the ``wanted`` POP retry topics that exist (so messages revived after the last pops
        are consumed now that nobody pops them). Found ones leave ``wanted``; the others stay in it."""
        for name, origin in sorted(wanted.items()):
            if name in self.drain_topics:
                continue
            try:
                route = await self.host.instance.route(name)
            except OrbitError:
                continue  # not created (yet): nothing to drain
            if route.subscribe_queues:
                self.drain_topics.add(name)
                self.drain_origins[name] = origin
                wanted.pop(name, None)

    def restore_topic(self, msg: MessageExt) -> None:
        """A message pulled from a POP retry topic is handed over under the topic it was sent to."""
        origin = self.drain_origins.get(msg.topic)
        if origin is not None:
            msg.topic = origin

    # -- rounds -------------------------------------------------------------------------------------------
    async def _mixed_round(self) -> bool:
        if self._reconcile_due():
            await self.reconcile()
            await self._look_for_drain_topics(self._drain_wanted)
        balanced = True
        cids: dict[str, tuple[str, ...]] = {}  # broker address → member ids, read once per round
        pull: list[str] = []
        pop: list[str] = []
        for topic in [*self.host.subscriptions, *sorted(self.drain_topics)]:
            mode = self.cache.get(topic)
            if mode is None:  # unknown: never guess, ask the broker (its answer carries the mode)
                balanced = await self._query(topic, cids) and balanced
                mode = self.cache.get(topic)
            if mode is not None:
                (pop if mode.pop else pull).append(topic)
        # PULL topics first (they need no broker decision, so they never wait behind POP topics), every
        # share decided before any is applied, and applied together: no topic waits for another's offsets.
        shares: dict[str, set[MessageQueue]] = {}
        for topic in pull:
            await self.pop.assign(topic, set(), PULL_MODE)
            try:
                mine = await self._local_share(topic, cids)
            except OrbitError as exc:
                log.info("%s: rebalance of %s skipped: %s", self.host.group, topic, exc)
                balanced = False
                continue
            if mine is not None:
                shares[topic] = mine
        applied = await asyncio.gather(*(self.host.update_queues(t, mine) for t, mine in shares.items()))
        balanced = all(applied) and balanced
        for topic in pop:
            await self.host.update_queues(topic, set())  # given up for pulling (offsets committed)
            if await self._pop_query_needed(topic, cids):
                balanced = await self._query(topic, cids) and balanced
        return balanced

    async def _broker_round(self) -> bool:
        """Upstream's ``clientRebalance=false``: every topic asks the broker, every round."""
        balanced = True
        for topic in [*self.host.subscriptions, *sorted(self.drain_topics)]:
            balanced = await self._query(topic, None) and balanced
        return balanced

    async def _route(self, topic: str) -> TopicRoute:
        return self.host.instance.routes.get(topic) or await self.host.instance.route(topic)

    async def _members(self, route: TopicRoute, cache: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        last: Exception | None = None
        for addr in route.master_addrs():
            if addr in cache:
                return cache[addr]
            self.counters.consumer_lists += 1
            try:
                resp = await self.host.instance.request(
                    addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": self.host.group}
                )
            except OrbitError as exc:
                last = exc
                continue
            cache[addr] = tuple(sorted(orjson.loads(resp.body_bytes()).get("consumerIdList") or []))
            return cache[addr]
        raise ClientError(f"no broker of {route.topic!r} gave the members of {self.host.group}: {last}")

    async def _local_share(self, topic: str, cids: dict[str, tuple[str, ...]]) -> set[MessageQueue] | None:
        route = await self._route(topic)
        queues = sorted(route.subscribe_queues)
        if not queues:
            return None
        members = await self._members(route, cids)
        return set(self.host.allocate(self.host.group, self.host.client_id, queues, members))

    async def _pop_query_needed(self, topic: str, cids: dict[str, tuple[str, ...]]) -> bool:
        inputs = self._inputs.get(topic)
        if topic in self._dirty or inputs is None:
            return True
        if self.clock() - inputs.at >= self.pop_refresh_s:
            return True
        try:
            route = await self._route(topic)
            members = await self._members(route, cids)
        except OrbitError:
            return True
        mode = self.cache.get(topic)
        if mode is not None and mode.pop_share_queue_num <= 0 and self.cache.share_known(topic):
            # Every member pops every queue whoever the members are (allocate4Pop): a member change moves
            # nothing, only the brokers of the route and the mode matter.
            members = inputs.cids
        current = (members, frozenset(route.subscribe_queues), mode)
        return current != (inputs.cids, inputs.queues, inputs.mode)

    async def _query(self, topic: str, cids: dict[str, tuple[str, ...]] | None) -> bool:
        """QUERY_ASSIGNMENT for ``topic`` and apply the answer; False (nothing changed) if it failed.
        ``cids``: this round's member lists (MIXED remembers what a POP assignment was computed from)."""
        body = orjson.dumps({"topic": topic, "consumerGroup": self.host.group, "clientId": self.host.client_id,
                             "strategyName": self.strategy_name, "messageModel": "CLUSTERING"})  # fmt: skip
        token = self.cache.begin_read()
        try:
            route = await self._route(topic)
        except OrbitError as exc:
            log.info("%s: no route for %s: %s", self.host.group, topic, exc)
            return False
        answer: Assignment | None = None
        for addr in route.master_addrs():
            self.counters.assignment_queries += 1
            try:
                resp = await self.host.instance.request(addr, RequestCode.QUERY_ASSIGNMENT, {}, body)
                answer = parse_assignment(resp)
                break
            except OrbitError as exc:  # a failure says nothing about the mode: keep it, ask again soon
                self.counters.assignment_failures += 1
                log.info("%s: assignment of %s from %s failed: %s", self.host.group, topic, addr, exc)
        if answer is None:
            self._dirty.add(topic)
            return False
        old = self.cache.get(topic)
        if self.cache.apply_assignment(token, topic, answer):
            await self._mode_changed(topic, old, self.cache.get(topic))
        return await self._apply(topic, route, answer, cids)

    async def _apply(
        self, topic: str, route: TopicRoute, answer: Assignment, cids: dict[str, tuple[str, ...]] | None
    ) -> bool:
        mode = self.cache.get(topic)
        if mode is None:
            return False  # an empty answer to an unknown topic: still unknown
        queues = set(answer.queues)
        if mode.pop:
            await self.host.update_queues(topic, set())
            await self.pop.assign(topic, queues, mode)
            self._dirty.discard(topic)
            if cids is not None:
                try:
                    members = await self._members(route, cids)
                except OrbitError:
                    return True  # no inputs remembered: the next round asks again
                inputs = _PopInputs(members, frozenset(route.subscribe_queues), mode, self.clock())
                self._inputs[topic] = inputs
            return True
        await self.pop.assign(topic, set(), mode)
        if self.policy is RebalancePolicy.BROKER:
            return await self.host.update_queues(topic, queues)
        return True  # MIXED: a PULL topic is balanced locally, in this round's PULL pass
