"""Per-topic request modes on the client, and the mode-aware rebalance of a push consumer
(docs/pop-rebalance.md).

A group's topics are PULL (classic: each queue owned by one member, balanced on the client) or POP (the
broker assigns queues with upstream's ``allocate4Pop`` and members pop them). :class:`RequestModeCache`
holds what this client believes each topic is. It changes only through three transitions, each fed by a
*successful* answer or a push from a broker:

- :meth:`RequestModeCache.apply_table`: a GET_ALL_MESSAGE_REQUEST_MODE (402) answer (reconciliation);
- :meth:`RequestModeCache.apply_push`: a NOTIFY_MESSAGE_REQUEST_MODE_CHANGED (403) push;
- :meth:`RequestModeCache.apply_assignment`: the mode carried by a QUERY_ASSIGNMENT (400) answer.

A failed or timed-out request calls none of them, so it can never flip a topic (upstream #8686: a client
that classified topics by probing turned a POP topic into a locally balanced one on a network error and
consumed it twice). A topic whose mode is unknown is not consumed until an answer says what it is. An
answer that was on its way while a push arrived does not overwrite the push (each read carries the push
sequence number it started at).

The policies (``RebalancePolicy``): ``MIXED`` (OrbitMQ: POP topics from the broker, the rest balanced
locally), ``BROKER`` (upstream's ``clientRebalance=false``: every topic through QUERY_ASSIGNMENT on every
round, kept for comparison) and ``LOCAL`` (every topic balanced locally; modes ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from orbitmq.client.allocate import AllocateStrategy
from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import RETRY_PREFIX, MessageExt, MessageQueue
from orbitmq.client.routing import TopicRoute
from orbitmq.core.errors import ClientError, OrbitError, ProtocolError
from orbitmq.net import Connection
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "ALL_QUEUES",
    "Assignment",
    "ModeAwareRebalance",
    "ModePush",
    "PopAssignee",
    "RebalanceCounters",
    "RebalanceHost",
    "RebalancePolicy",
    "RequestMode",
    "RequestModeCache",
    "TopicMode",
    "parse_assignment",
    "parse_mode_push",
    "parse_mode_table",
    "pop_retry_topics",
]

log = logging.getLogger("orbitmq.client.modes")

#: Queue id of a POP assignment meaning "every queue of that broker".
ALL_QUEUES: Final = -1


class RebalancePolicy(enum.Enum):
    MIXED = "MIXED"
    BROKER = "BROKER"
    LOCAL = "LOCAL"


class RequestMode(enum.Enum):
    PULL = "PULL"
    POP = "POP"


@dataclass(frozen=True, slots=True)
class TopicMode:
    mode: RequestMode
    pop_share_queue_num: int = 0

    @property
    def pop(self) -> bool:
        return self.mode is RequestMode.POP


PULL_MODE: Final = TopicMode(RequestMode.PULL)


def pop_retry_topics(group: str, topic: str) -> tuple[str, str]:
    """The two names a broker may give the POP retry topic of (group, topic): V1 ``%RETRY%g_t`` (the
    default) and V2 ``%RETRY%g+t``. Leftovers of a POP period are drained from them by pull."""
    return f"{RETRY_PREFIX}{group}_{topic}", f"{RETRY_PREFIX}{group}+{topic}"


# -- wire bodies --------------------------------------------------------------------------------------------
def _mode(raw: object) -> RequestMode:
    try:
        return RequestMode(raw)
    except ValueError:
        raise ProtocolError(f"unknown message request mode {raw!r}") from None


def _int(raw: object, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ProtocolError(f"{what} is not an integer: {raw!r}")
    try:
        return int(raw)
    except ValueError:
        raise ProtocolError(f"{what} is not an integer: {raw!r}") from None


def parse_mode_table(resp: RemotingCommand, group: str) -> tuple[dict[str, TopicMode], TopicMode]:
    """A GET_ALL_MESSAGE_REQUEST_MODE answer → (this group's stored modes by topic, the broker's default);
    ProtocolError when it is malformed.

    An upstream broker sends no default: its shipped default is PULL, which is what we assume.
    """
    body = fastjson.loads(resp.body_bytes())
    # Every broker sends the map, empty or not; an answer without it is not "no modes", it is broken.
    table = body.get("messageRequestModeMap") if isinstance(body, dict) else None
    if not isinstance(table, dict):
        raise ProtocolError("mode table answer without a messageRequestModeMap object")
    modes: dict[str, TopicMode] = {}
    for topic, groups in table.items():
        entry = groups.get(group) if isinstance(groups, dict) else None
        if isinstance(entry, dict):
            share = _int(entry.get("popShareQueueNum", 0), "popShareQueueNum")
            modes[str(topic)] = TopicMode(_mode(entry.get("mode", "PULL")), share)
    default_mode = _mode(resp.ext_fields.get("defaultMessageRequestMode", "PULL"))
    default_share = _int(resp.ext_fields.get("defaultPopShareQueueNum", "-1"), "defaultPopShareQueueNum")
    return modes, TopicMode(default_mode, default_share if default_mode is RequestMode.POP else 0)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A QUERY_ASSIGNMENT answer: the queues and the mode they are to be consumed in (None: no queue, so
    the answer says nothing about the mode)."""

    queues: frozenset[MessageQueue]
    mode: RequestMode | None


def parse_assignment(resp: RemotingCommand) -> Assignment | None:
    """None for upstream's "no valid result" (``messageQueueAssignments`` null): keep what you have."""
    body = fastjson.loads(resp.body_bytes()) if resp.body_bytes() else {}
    if not isinstance(body, dict):
        raise ProtocolError("assignment body is not an object")
    raw = body.get("messageQueueAssignments")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ProtocolError("messageQueueAssignments is not a list")
    queues: set[MessageQueue] = set()
    modes: set[RequestMode] = set()
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("messageQueue"), dict):
            raise ProtocolError(f"bad assignment entry {entry!r}")
        try:
            queues.add(MessageQueue.from_json(entry["messageQueue"]))
        except (KeyError, ValueError) as exc:
            raise ProtocolError(f"bad message queue in assignment: {exc!r}") from exc
        modes.add(_mode(entry.get("mode", "PULL")))
    if len(modes) > 1:
        raise ProtocolError(f"assignment mixes modes {sorted(m.value for m in modes)}")
    return Assignment(frozenset(queues), modes.pop() if modes else None)


@dataclass(frozen=True, slots=True)
class ModePush:
    group: str
    topic: str
    mode: TopicMode
    reason: str


def parse_mode_push(cmd: RemotingCommand) -> ModePush:
    """The ext fields of a 403 push; ProtocolError when one is missing or wrong."""
    share = _int(cmd.ext_fields.get("popShareQueueNum", "0"), "popShareQueueNum")
    return ModePush(
        cmd.str_field("consumerGroup"),
        cmd.str_field("topic"),
        TopicMode(_mode(cmd.str_field("mode")), share),
        cmd.ext_fields.get("reason", "MODE_CHANGED"),
    )


# -- the cache ----------------------------------------------------------------------------------------------
class RequestModeCache:
    """What this client believes each topic's mode is (absent = unknown). See the module docstring."""

    def __init__(self) -> None:
        self._modes: dict[str, TopicMode] = {}
        self._pushed_at: dict[str, int] = {}
        self._seq = 0
        #: Every change of a known topic's mode, as (topic, old, new) (tests and metrics read it).
        self.history: list[tuple[str, TopicMode | None, TopicMode]] = []
        self._share_known: set[str] = set()

    def get(self, topic: str) -> TopicMode | None:
        if topic.startswith(RETRY_PREFIX):
            return PULL_MODE  # retry topics are always pulled (upstream's rule, the broker refuses others)
        return self._modes.get(topic)

    def snapshot(self) -> dict[str, TopicMode]:
        return dict(self._modes)

    def share_known(self, topic: str) -> bool:
        """True when the share came from a table or a push (an assignment answer does not carry it)."""
        return topic in self._share_known

    def begin_read(self) -> int:
        """Call before sending a request whose answer will feed :meth:`apply_table`/:meth:`apply_assignment`."""
        return self._seq

    def _set(self, topic: str, mode: TopicMode) -> bool:
        old = self._modes.get(topic)
        if old == mode:
            return False
        self._modes[topic] = mode
        self.history.append((topic, old, mode))
        return True

    def apply_push(self, topic: str, mode: TopicMode) -> bool:
        """A broker pushed ``mode``; True if it changed anything."""
        self._seq += 1
        self._pushed_at[topic] = self._seq
        self._share_known.add(topic)
        return self._set(topic, mode)

    def _superseded(self, topic: str, token: int) -> bool:
        return self._pushed_at.get(topic, 0) > token

    def apply_table(
        self, token: int, topics: Iterable[str], modes: Mapping[str, TopicMode], default: TopicMode
    ) -> list[str]:
        """A successful mode table read (started at ``token``): every topic of ``topics`` takes its stored
        mode, or ``default``. Topics pushed since ``token`` keep the pushed mode. The topics that changed."""
        changed = []
        for topic in topics:
            if topic.startswith(RETRY_PREFIX) or self._superseded(topic, token):
                continue
            self._share_known.add(topic)
            if self._set(topic, modes.get(topic, default)):
                changed.append(topic)
        return changed

    def apply_assignment(self, token: int, topic: str, assignment: Assignment) -> bool:
        """The mode a successful QUERY_ASSIGNMENT answered with (it knows no share: the cached one is
        kept, else 0). Answers without queues, or overtaken by a push, change nothing."""
        if assignment.mode is None or topic.startswith(RETRY_PREFIX) or self._superseded(topic, token):
            return False
        known = self._modes.get(topic)
        if known is not None and known.mode is assignment.mode:
            return False
        share = known.pop_share_queue_num if known is not None else 0
        if known is None:
            self._share_known.discard(topic)
        return self._set(topic, TopicMode(assignment.mode, share))


def mode_table_fields(group: str, subscribe: bool) -> dict[str, Any]:
    """Ext fields of OrbitMQ's GET_ALL_MESSAGE_REQUEST_MODE: one group, and the 403 subscription."""
    return {"consumerGroup": group, "subscribeModeChange": subscribe}


# -- the mode-aware rebalance ---------------------------------------------------------------------------------
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
