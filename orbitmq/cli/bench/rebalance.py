"""``orbitmq bench rebalance``: POP-aware rebalance (``RebalancePolicy.MIXED``) against upstream's broker-side
rebalance of every topic (``RebalancePolicy.BROKER``, the Java client's ``clientRebalance=false``), in the
same run (docs/pop-rebalance.md).

A group of 4 push consumers subscribes to 8 topics (8 queues each) of which 4 are POP (``popShareQueueNum``
0). For each policy, on the same in-process NameServer + broker (one event loop: the broker's work is on the
clients' core, the same for both policies):

- **steady state**: rebalance-related requests the broker receives (GET_CONSUMER_LIST_BY_GROUP 38,
  QUERY_ASSIGNMENT 400, GET_ALL_MESSAGE_REQUEST_MODE 402) over a window of periodic rounds, per minute at the
  configured rebalance interval, and per member and round (independent of the interval);
- **membership changes**: a fifth member joins, then leaves, alternately. For each change, the time from the
  broker registering it (its consumer-change event, which also sends NOTIFY_CONSUMER_IDS_CHANGED) until every
  member holds exactly its new share of the 4 non-POP topics; and the rebalance requests each change cost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import tempfile
import time
from typing import Any, Final

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig
from orbitmq.cli.bench.common import machine, percentile
from orbitmq.client.allocate import averagely
from orbitmq.client.consumer import PushConsumer
from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import ConsumeFromWhere, MessageQueue
from orbitmq.client.modes import RebalancePolicy
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.protocol.codes import RequestCode
from orbitmq.store import StoreConfig

__all__ = ["BenchSettings", "rebalance_bench", "run_rebalance_bench"]

TOPICS: Final = 8
POP_TOPICS: Final = 4
QUEUES: Final = 8
MEMBERS: Final = 4
REBALANCE_CODES: Final = {
    RequestCode.GET_CONSUMER_LIST_BY_GROUP: "GET_CONSUMER_LIST_BY_GROUP",
    RequestCode.QUERY_ASSIGNMENT: "QUERY_ASSIGNMENT",
    RequestCode.GET_ALL_MESSAGE_REQUEST_MODE: "GET_ALL_MESSAGE_REQUEST_MODE",
}


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    interval_s: float = 5.0  # the members' rebalance interval (the Java client's is 20 s)
    window_s: float = 30.0  # steady-state measurement (one mode reconciliation per member falls in it)
    changes: int = 8  # membership changes timed (join, leave, join, ...)

    @classmethod
    def quick(cls) -> BenchSettings:
        return cls(interval_s=1.0, window_s=3.0, changes=2)


def topic_names(policy: RebalancePolicy) -> tuple[list[str], list[str]]:
    """(all topics in subscription order, the POP ones): POP and PULL alternate, so neither kind is always
    first in a round that goes through the topics in order."""
    names = [f"Bench{policy.value.title()}T{i}" for i in range(TOPICS)]
    return names, names[0 : 2 * POP_TOPICS : 2]


class Phase:
    """One policy's group on the shared broker."""

    def __init__(self, broker: BrokerApp, ns: str, policy: RebalancePolicy, settings: BenchSettings) -> None:
        self.broker, self.ns, self.policy, self.settings = broker, ns, policy, settings
        self.group = f"BenchRebalance{policy.value.title()}"
        self.topics, self.pop_topics = topic_names(policy)
        self.pull_topics = [t for t in self.topics if t not in self.pop_topics]
        self.members: list[PushConsumer] = []
        self.changed_at: list[float] = []
        #: (member, topic) → (when, queues) of every PULL assignment a member applied, newest last.
        self.decided: dict[tuple[str, str], list[tuple[float, frozenset[MessageQueue]]]] = {}

    # -- setup --------------------------------------------------------------------------------------------
    async def prepare(self) -> None:
        inst = ClientInstance([self.ns])
        try:
            for t in self.topics:
                await inst.request(self.broker.address, RequestCode.UPDATE_AND_CREATE_TOPIC,
                                   {"topic": t, "defaultTopic": "TBW102", "readQueueNums": QUEUES,
                                    "writeQueueNums": QUEUES, "perm": 6})  # fmt: skip
            for t in self.pop_topics:
                body = f'{{"topic":"{t}","consumerGroup":"{self.group}","mode":"POP","popShareQueueNum":0}}'
                await inst.request(
                    self.broker.address, RequestCode.SET_MESSAGE_REQUEST_MODE, {}, body.encode()
                )
            await self.broker.registration.register_now(5)
        finally:
            await inst.close()
        original = self.broker.consumers.on_change
        assert original is not None

        def on_change(group: str, channels: list[Any]) -> None:
            if group == self.group:
                self.changed_at.append(time.perf_counter())
            original(group, channels)

        self.broker.consumers.on_change = on_change

    async def add_member(self, first: bool = False) -> PushConsumer:
        """``first``: a client id that sorts before the others', so every member's share moves (a member
        sorting last would often change nobody's queues, and time nothing)."""
        name = f"{'a' if first else 'm'}{len(self.members)}-{time.monotonic_ns()}"
        c = PushConsumer(
            self.group, [self.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
            rebalance_interval_s=self.settings.interval_s, long_poll_s=5.0, rebalance_policy=self.policy,
            instance_name=name,
        )  # fmt: skip
        for t in self.topics:
            c.subscribe(t)
        c.register_listener(lambda msg: True)
        apply = c.update_queues

        async def traced(topic: str, mine: set[MessageQueue]) -> bool:
            # The moment a member knows its new share (before it fetches offsets and starts pulling).
            self.decided.setdefault((c.client_id, topic), []).append((time.perf_counter(), frozenset(mine)))
            return await apply(topic, mine)

        setattr(c, "update_queues", traced)  # noqa: B010 (the instance attribute shadows the method)
        await c.start()
        self.members.append(c)
        return c

    async def stop(self) -> None:
        for c in self.members:
            await c.shutdown()
        self.members.clear()

    # -- observations -------------------------------------------------------------------------------------
    def requests(self) -> dict[str, int]:
        by_code = self.broker.server.counters.requests_by_code
        return {name: by_code.get(int(code), 0) for code, name in REBALANCE_CODES.items()}

    def expected(self, cid: str, topic: str, cids: list[str]) -> set[MessageQueue]:
        queues = [MessageQueue(topic, self.broker.config.broker_name, q) for q in range(QUEUES)]
        return set(averagely(self.group, cid, queues, cids))

    def decided_since(self, t0: float, members: list[PushConsumer]) -> float | None:
        """When the last of ``members`` decided its new share of the last non-POP topic (None: not yet)."""
        cids = sorted(c.client_id for c in self.members)
        last = t0
        for c in members:
            for t in self.pull_topics:
                want = self.expected(c.client_id, t, cids)
                when = next(
                    (at for at, q in self.decided.get((c.client_id, t), []) if at >= t0 and q == want), None
                )
                if when is None:
                    return None
                last = max(last, when)
        return last

    def holding(self, members: list[PushConsumer]) -> bool:
        """Each of ``members`` pulls exactly its AVG share of every non-POP topic (and no POP topic)."""
        cids = sorted(c.client_id for c in self.members)
        for c in members:
            held = c.assigned_queues()
            for t in self.pull_topics:
                if {mq for mq in held if mq.topic == t} != self.expected(c.client_id, t, cids):
                    return False
            if any(mq.topic in self.pop_topics for mq in held):
                return False
        return True

    async def until(self, members: list[PushConsumer], timeout_s: float = 60.0) -> float:
        async with asyncio.timeout(timeout_s):
            while not self.holding(members):
                await asyncio.sleep(0.001)
        return time.perf_counter()


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


async def _measure(phase: Phase) -> dict[str, Any]:
    s = phase.settings
    await phase.prepare()
    for _ in range(MEMBERS):
        await phase.add_member()
    await phase.until(phase.members)
    await asyncio.sleep(s.interval_s)  # past the first rounds, which read the modes
    before, t0 = phase.requests(), time.perf_counter()
    await asyncio.sleep(s.window_s)
    steady = _delta(phase.requests(), before)
    elapsed = time.perf_counter() - t0
    total = sum(steady.values())
    rounds = elapsed / s.interval_s * MEMBERS
    samples: dict[str, dict[str, list[float]]] = {k: {"decided": [], "held": []} for k in ("join", "leave")}
    per_change: list[int] = []
    for i in range(s.changes):
        before, mark = phase.requests(), len(phase.changed_at)
        existing = list(phase.members)
        kind = "join" if i % 2 == 0 else "leave"
        if kind == "join":
            await phase.add_member(first=True)
        else:
            existing.remove(leaving := phase.members.pop())
            await leaving.shutdown()
        held = await phase.until(existing)  # the members that were there before (their rebalance)
        await phase.until(phase.members)  # and the newcomer, before the next change
        changed = phase.changed_at[mark]
        decided = phase.decided_since(changed, existing) or held
        samples[kind]["decided"].append((decided - changed) * 1000)
        samples[kind]["held"].append((held - changed) * 1000)
        await asyncio.sleep(min(1.0, s.interval_s / 2))  # let the change's rounds finish before counting
        per_change.append(sum(_delta(phase.requests(), before).values()))
    await phase.stop()
    return {
        "policy": phase.policy.value,
        "steady": {
            "window_s": round(elapsed, 2),
            "requests": steady,
            "requests_per_minute": round(total * 60 / elapsed, 1),
            "requests_per_member_round": round(total / rounds, 2) if rounds else 0.0,
        },
        "membership_changes": {
            "count": s.changes,
            "requests_per_change": round(sum(per_change) / len(per_change), 1) if per_change else 0.0,
            # decided: until every member that was already there knows its new share of every non-POP topic;
            # held: until it also holds exactly those queues (offsets fetched, pulls started).
            **{
                f"{kind}_{what}_ms": _summary(values)
                for kind, d in samples.items()
                for what, values in d.items()
            },
        },
    }


def _summary(samples: list[float]) -> dict[str, Any]:
    return {
        "p50": round(statistics.median(samples), 2) if samples else 0.0,
        "p90": round(percentile(samples, 90), 2),
        "samples": [round(x, 2) for x in samples],
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


async def rebalance_bench(settings: BenchSettings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orbitmq-bench-rebalance-") as data:
        namesrv = NamesrvApp(NamesrvConfig(port=0))
        await namesrv.start()
        broker = BrokerApp(
            BrokerConfig(listen_port=0, namesrv_addr=(namesrv.addr,)),
            StoreConfig(store_path_root_dir=data, mapped_file_size_commit_log=4 * 1024 * 1024,
                        mapped_file_size_consume_queue=20 * 1024),
        )  # fmt: skip
        await broker.start()
        try:
            ours = await _measure(Phase(broker, namesrv.addr, RebalancePolicy.MIXED, settings))
            upstream = await _measure(Phase(broker, namesrv.addr, RebalancePolicy.BROKER, settings))
        finally:
            await broker.stop()
            await namesrv.stop()
    o, u = ours["membership_changes"], upstream["membership_changes"]
    ratios: dict[str, float | None] = {
        "requests_per_minute_mixed_over_upstream": _ratio(
            ours["steady"]["requests_per_minute"], upstream["steady"]["requests_per_minute"]
        ),
        "requests_per_change_mixed_over_upstream": _ratio(o["requests_per_change"], u["requests_per_change"]),
    }
    for key in ("join_decided_ms", "leave_decided_ms", "join_held_ms", "leave_held_ms"):
        ratios[f"{key}_p50_mixed_over_upstream"] = _ratio(o[key]["p50"], u[key]["p50"])
    return {
        "workload": "rebalance",
        "machine": machine(),
        "settings": dataclasses.asdict(settings),
        "group": {"members": MEMBERS, "topics": TOPICS, "pop_topics": POP_TOPICS, "queues_per_topic": QUEUES},
        "mixed": ours,
        "upstream": upstream,
        "ratios": ratios,
    }


def run_rebalance_bench(settings: BenchSettings) -> dict[str, Any]:
    return asyncio.run(rebalance_bench(settings))
