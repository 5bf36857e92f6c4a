"""The mode-aware rebalance against a real NameServer + Broker, with a recording host in place of the
consumer's queue handling: which topics ask the broker, what a push changes, and that failing, hanging or
empty QUERY_ASSIGNMENT / GET_ALL_MESSAGE_REQUEST_MODE answers never change a topic's mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from orbitmq.client.allocate import averagely
from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import MessageQueue
from orbitmq.client.modes import ModeAwareRebalance, RebalancePolicy, RequestMode, TopicMode
from orbitmq.net import Connection, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

from .conftest import Cluster

GROUP = "ModeG"


class Host:
    """A consumer as the rebalance sees it: records the queues it is told to pull."""

    def __init__(self, ns: str, name: str, topics: list[str]) -> None:
        self.group = GROUP
        self.instance = ClientInstance(ns, instance_name=name, request_timeout_s=0.5)
        self.subscriptions = {t: "*" for t in topics}
        self.allocate = averagely
        self.pulled: dict[str, set[MessageQueue]] = {}
        self.woken = asyncio.Event()

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    async def update_queues(self, topic: str, mine: set[MessageQueue]) -> bool:
        self.pulled[topic] = set(mine)
        return True

    def request_rebalance(self) -> None:
        self.woken.set()

    async def heartbeat(self) -> None:
        subs = [
            {"topic": t, "subString": "*", "tagsSet": [], "codeSet": [], "subVersion": 1}
            for t in self.subscriptions
        ]
        consumer = {"groupName": GROUP, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
                    "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "subscriptionDataSet": subs}  # fmt: skip
        await self.instance.heartbeat({"consumerDataSet": [consumer], "producerDataSet": []})


class Pop:
    def __init__(self) -> None:
        self.assigned: dict[str, tuple[set[MessageQueue], TopicMode]] = {}

    async def assign(self, topic: str, queues: set[MessageQueue], mode: TopicMode) -> None:
        if queues:
            self.assigned[topic] = (set(queues), mode)
        else:
            self.assigned.pop(topic, None)


Member = tuple[Host, Pop, ModeAwareRebalance]


async def admin(cluster: Cluster, code: int, body: object = None, **fields: str) -> RemotingCommand:
    client = RemotingClient()
    try:
        payload = orjson.dumps(body) if body is not None else b""
        addr = cluster.broker.address if cluster.broker else ""
        return await client.invoke(addr, RemotingCommand.request(code, fields, payload), 5)
    finally:
        await client.close()


async def create_topic(cluster: Cluster, topic: str, queues: int = 4) -> None:
    r = await admin(cluster, RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102",
                    readQueueNums=str(queues), writeQueueNums=str(queues), perm="6")  # fmt: skip
    assert r.code == ResponseCode.SUCCESS


async def set_mode(cluster: Cluster, topic: str, mode: str, share: int = 0) -> None:
    body = {"topic": topic, "consumerGroup": GROUP, "mode": mode, "popShareQueueNum": share}
    assert (await admin(cluster, RequestCode.SET_MESSAGE_REQUEST_MODE, body)).code == ResponseCode.SUCCESS


@pytest.fixture
async def members(cluster: Cluster) -> AsyncIterator[Callable[..., Awaitable[Member]]]:
    made: list[Host] = []

    async def join(name: str, topics: list[str], policy: RebalancePolicy = RebalancePolicy.MIXED) -> Member:
        host, pop = Host(cluster.ns, name, topics), Pop()
        made.append(host)
        for t in topics:
            await host.instance.route(t)
        await host.heartbeat()
        return host, pop, ModeAwareRebalance(host, policy, pop)

    yield join
    for host in made:
        await host.instance.close()


async def test_pull_topics_are_balanced_locally_and_pop_topics_ask_only_when_something_changed(
    cluster: Cluster, members: Callable[..., Awaitable[Member]]
) -> None:
    await create_topic(cluster, "PullT")
    await create_topic(cluster, "PopT")
    await set_mode(cluster, "PopT", "POP", 0)
    a = await members("a", ["PullT", "PopT"])
    b = await members("b", ["PullT", "PopT"])
    for _, pop, rebalance in (a, b):
        assert await rebalance.rebalance()
        assert rebalance.cache.get("PopT") == TopicMode(RequestMode.POP, 0)
        assert pop.assigned["PopT"][0] == {MessageQueue("PopT", "broker-a", -1)}
        assert "PullT" not in pop.assigned
    assert a[0].pulled["PullT"] | b[0].pulled["PullT"] == {
        MessageQueue("PullT", "broker-a", i) for i in range(4)
    }
    assert not a[0].pulled["PullT"] & b[0].pulled["PullT"]
    assert a[0].pulled["PopT"] == set()  # never pulled
    counters = b[2].counters
    assert counters.assignment_queries == 1  # only the POP topic, only once
    before = (counters.assignment_queries, counters.consumer_lists)
    assert await b[2].rebalance()
    # Nothing changed: one member list for the whole round (shared by every topic), no assignment query.
    assert (counters.assignment_queries, counters.consumer_lists) == (before[0], before[1] + 1)


async def test_a_mode_push_moves_a_topic_between_pulling_and_popping(
    cluster: Cluster, members: Callable[..., Awaitable[Member]]
) -> None:
    await create_topic(cluster, "SwT")
    host, pop, rebalance = await members("a", ["SwT"])
    await rebalance.rebalance()
    assert host.pulled["SwT"] == {MessageQueue("SwT", "broker-a", i) for i in range(4)}
    await set_mode(cluster, "SwT", "POP", 1)
    await asyncio.wait_for(host.woken.wait(), 5)  # the push asked for a rebalance
    assert rebalance.counters.pushes == 1 and rebalance.cache.get("SwT") == TopicMode(RequestMode.POP, 1)
    await rebalance.rebalance()
    assert host.pulled["SwT"] == set() and pop.assigned["SwT"][1].pop
    host.woken.clear()
    await set_mode(cluster, "SwT", "PULL")
    await asyncio.wait_for(host.woken.wait(), 5)
    await rebalance.rebalance()
    assert "SwT" not in pop.assigned and len(host.pulled["SwT"]) == 4


async def test_failed_hanging_and_empty_answers_never_change_a_mode(
    cluster: Cluster, members: Callable[..., Awaitable[Member]]
) -> None:
    await create_topic(cluster, "FaultPull", 4)
    await create_topic(cluster, "FaultPop", 4)
    await set_mode(cluster, "FaultPop", "POP", 1)
    group = [await members(n, ["FaultPull", "FaultPop"]) for n in ("a", "b", "c")]
    for _, _, rebalance in group:
        await rebalance.rebalance()
    modes = {h.client_id: dict(r.cache.snapshot()) for h, _, r in group}
    popped = {h.client_id: dict(p.assigned) for h, p, _ in group}
    # Share 1: each member pops its own AVG block and the next member's (2+1, 1+1, 1+2 of 4 queues).
    assert sorted(len(p["FaultPop"][0]) for p in popped.values()) == [2, 3, 3]

    answers = iter(["error", "hang", "empty", "not-supported"] * 3)
    held: list[asyncio.Future[None]] = []

    async def faulty(cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        kind = next(answers, "error")
        if kind == "hang":  # longer than the client's 0.5 s timeout
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            held.append(fut)
            await asyncio.wait_for(fut, 2)
        if kind == "empty":
            return cmd.response(body=b"{}")
        code = (
            ResponseCode.REQUEST_CODE_NOT_SUPPORTED if kind == "not-supported" else ResponseCode.SYSTEM_ERROR
        )
        return cmd.response(code, f"injected {kind}")

    assert cluster.broker is not None
    original_query = cluster.broker.dispatch.get(RequestCode.QUERY_ASSIGNMENT)
    original_modes = cluster.broker.dispatch.get(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE)
    assert original_query is not None and original_modes is not None
    cluster.broker.dispatch.register(RequestCode.QUERY_ASSIGNMENT, faulty, replace=True)
    cluster.broker.dispatch.register(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, faulty, replace=True)
    try:
        for round_no in range(4):
            for host, pop, rebalance in group:
                rebalance._dirty.add("FaultPop")  # as a push or a member change would: ask again
                rebalance._last_reconcile = None  # and reconcile every round
                await rebalance.rebalance()
                assert rebalance.cache.snapshot() == modes[host.client_id], (
                    f"round {round_no} {rebalance.cache.history}"
                )
                assert pop.assigned == popped[host.client_id]
        failures = sum(r.counters.assignment_failures + r.counters.mode_read_failures for _, _, r in group)
        assert failures >= 12
        # The PULL topic stayed balanced locally the whole time: every queue once.
        pulled = [h.pulled["FaultPull"] for h, _, _ in group]
        assert sum(len(p) for p in pulled) == 4 and len(set().union(*pulled)) == 4
    finally:
        for fut in held:
            if not fut.done():
                fut.set_result(None)
        cluster.broker.dispatch.register(RequestCode.QUERY_ASSIGNMENT, original_query, replace=True)
        cluster.broker.dispatch.register(
            RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, original_modes, replace=True
        )
    # Once the broker answers again, the next round asks and gets the same assignment.
    for host, pop, rebalance in group:
        assert await rebalance.rebalance()
        assert pop.assigned == popped[host.client_id]


async def test_an_unknown_topic_is_not_consumed_until_a_broker_says_its_mode(
    cluster: Cluster, members: Callable[..., Awaitable[Member]]
) -> None:
    await create_topic(cluster, "UnkT")
    assert cluster.broker is not None
    original = cluster.broker.dispatch.get(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE)
    query = cluster.broker.dispatch.get(RequestCode.QUERY_ASSIGNMENT)
    assert original is not None and query is not None

    async def down(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        return cmd.response(ResponseCode.SYSTEM_BUSY, "injected")

    for code in (RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, RequestCode.QUERY_ASSIGNMENT):
        cluster.broker.dispatch.register(code, down, replace=True)
    host, pop, rebalance = await members("a", ["UnkT"])
    assert not await rebalance.rebalance()
    assert rebalance.cache.get("UnkT") is None and "UnkT" not in host.pulled and not pop.assigned
    cluster.broker.dispatch.register(RequestCode.QUERY_ASSIGNMENT, query, replace=True)
    assert await rebalance.rebalance()  # the assignment answer carries the mode: PULL
    assert rebalance.cache.get("UnkT") == TopicMode(RequestMode.PULL)
    assert len(host.pulled["UnkT"]) == 4
    cluster.broker.dispatch.register(RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, original, replace=True)


async def test_upstream_policy_asks_the_broker_for_every_topic_every_round(
    cluster: Cluster, members: Callable[..., Awaitable[Member]]
) -> None:
    await create_topic(cluster, "UpPull")
    await create_topic(cluster, "UpPop")
    await set_mode(cluster, "UpPop", "POP", 0)
    host, pop, rebalance = await members("a", ["UpPull", "UpPop"], RebalancePolicy.BROKER)
    assert await rebalance.rebalance()
    assert await rebalance.rebalance()
    assert rebalance.counters.assignment_queries == 4 and rebalance.counters.mode_reads == 0
    assert len(host.pulled["UpPull"]) == 4 and pop.assigned["UpPop"][0] == {
        MessageQueue("UpPop", "broker-a", -1)
    }
