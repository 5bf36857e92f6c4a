"""PushConsumers with mixed PULL and POP topics against a real broker (issue 6's required tests):

- a topic switched PULL → POP → PULL while a group of three consumes: every message consumed, none lost;
- QUERY_ASSIGNMENT failing and hanging while the group consumes (and grows): no topic changes mode and
  the POP topic is consumed exactly once (nothing is redelivered: nothing stayed unacked);
- a slow handler keeps its message invisible; a failed one comes back; POP leftovers are drained by pull.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere, Message, MessageExt
from orbitmq.client.modes import RebalancePolicy, RequestMode, TopicMode
from orbitmq.client.producer import Producer
from orbitmq.net import Connection, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import INIT_MODE_MIN, PopMessageRequestHeader
from orbitmq.protocol.record import decode_records

from .conftest import Cluster, create_topic, until


async def set_mode(cluster: Cluster, group: str, topic: str, mode: str, share: int = 0) -> None:
    assert cluster.broker is not None
    body = orjson.dumps({"topic": topic, "consumerGroup": group, "mode": mode, "popShareQueueNum": share})
    client = RemotingClient()
    try:
        r = await client.invoke(
            cluster.broker.address, RemotingCommand.request(RequestCode.SET_MESSAGE_REQUEST_MODE, {}, body), 5
        )
        assert r.code == ResponseCode.SUCCESS
    finally:
        await client.close()


class Group:
    """Consumers of one group that record every delivery (msg id → deliveries)."""

    def __init__(self, cluster: Cluster, group: str, topics: list[str], **kw: object) -> None:
        self.cluster, self.group, self.topics, self.kw = cluster, group, topics, kw
        self.members: list[PushConsumer] = []
        self.seen: Counter[str] = Counter()
        self.by_topic: dict[str, Counter[str]] = {t: Counter() for t in topics}

    async def _record(self, msg: MessageExt) -> None:
        await asyncio.sleep(0.002)  # a little work, so a switch finds messages in flight
        self.seen[msg.msg_id] += 1
        self.by_topic.setdefault(msg.topic, Counter())[msg.msg_id] += 1

    async def add(self) -> PushConsumer:
        c = PushConsumer(
            self.group, [self.cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
            long_poll_s=1.0, rebalance_interval_s=1.0, instance_name=f"{self.group}-{len(self.members)}",
            **self.kw,  # type: ignore[arg-type]
        )  # fmt: skip
        c.instance.request_timeout_s = 0.5  # a hung broker answer counts as failed quickly
        for t in self.topics:
            c.subscribe(t)
        c.register_listener(self._record)
        await c.start()
        self.members.append(c)
        return c

    async def stop(self) -> None:
        for c in self.members:
            await c.shutdown()


@pytest.fixture
async def groups(cluster: Cluster) -> AsyncIterator[Callable[..., Group]]:
    made: list[Group] = []

    def make(group: str, topics: list[str], **kw: object) -> Group:
        g = Group(cluster, group, topics, **kw)
        made.append(g)
        return g

    yield make
    for g in made:
        await g.stop()


async def send(p: Producer, topic: str, n: int, start: int = 0) -> list[str]:
    return [(await p.send(Message(topic, f"{topic}-{i}".encode()))).msg_id for i in range(start, start + n)]


def switched(g: Group, topic: str, mode: str) -> bool:
    """Every member knows the new mode, and the topic is consumed that way (all pop, or its queues pulled)."""
    want = TopicMode(RequestMode(mode), 0)
    if not all(c.mode_rebalance is not None and c.mode_rebalance.cache.get(topic) == want for c in g.members):
        return False
    if mode == "POP":
        return all(c.pop_consumption.assigned(topic) for c in g.members)
    pulled = [mq for c in g.members for mq in c.assigned_queues() if mq.topic == topic]
    return len(pulled) == 4 and not any(c.pop_consumption.assigned(topic) for c in g.members)


async def test_switching_modes_while_three_consume_loses_nothing(
    cluster: Cluster, groups: Callable[..., Group]
) -> None:
    topic = "SwitchT"
    await create_topic(cluster, topic, 4)
    g = groups("SwitchG", [topic])
    for _ in range(3):
        await g.add()
    sent: list[str] = []
    async with Producer("SwitchP", [cluster.ns]) as p:
        for mode in ("POP", "PULL", "POP", None):
            for _ in range(5):  # keep producing while the members consume (and switch)
                sent += await send(p, topic, 20, len(sent))
                await asyncio.sleep(0.05)
            if mode is not None:
                await set_mode(cluster, "SwitchG", topic, mode, 0)
                await until(lambda m=mode: switched(g, topic, m), 15)  # type: ignore[misc]
    await until(lambda: set(sent) <= set(g.seen), 30)
    duplicates = sum(n - 1 for n in g.seen.values())
    print(f"\n{len(sent)} sent, {len(g.seen)} consumed, {duplicates} delivered more than once")
    assert set(g.seen) == set(sent)
    for c in g.members:  # every switch came from the broker's pushes or reconciliation, never from a failure
        assert c.mode_rebalance is not None
        modes = [new.mode.value for t, _, new in c.mode_rebalance.cache.history if t == topic]
        assert modes == ["PULL", "POP", "PULL", "POP"]


async def test_query_assignment_failing_and_hanging_changes_no_mode_and_duplicates_nothing(
    cluster: Cluster, groups: Callable[..., Group]
) -> None:
    await create_topic(cluster, "FaultPopT", 4)
    await create_topic(cluster, "FaultPullT", 4)
    await set_mode(cluster, "FaultG", "FaultPopT", "POP", 0)
    g = groups("FaultG", ["FaultPopT", "FaultPullT"])
    for _ in range(3):
        c = await g.add()
    for c in g.members:
        assert c.mode_rebalance is not None
        c.mode_rebalance.pop_refresh_s = 0  # ask the broker about the POP topic every round
    await until(lambda: all(c.pop_consumption.assigned("FaultPopT") for c in g.members))
    histories = {c.client_id: list(c.mode_rebalance.cache.history) for c in g.members if c.mode_rebalance}

    assert cluster.broker is not None
    dispatch = cluster.broker.dispatch
    original = dispatch.get(RequestCode.QUERY_ASSIGNMENT)
    assert original is not None
    calls = Counter[str]()

    async def faulty(cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        calls["total"] += 1
        if calls["total"] % 2:
            await asyncio.sleep(1.0)  # the client gave up after its 0.5 s timeout
            return cmd.response(ResponseCode.SYSTEM_ERROR, "injected after a hang")
        return cmd.response(ResponseCode.SYSTEM_BUSY, "injected")

    dispatch.register(RequestCode.QUERY_ASSIGNMENT, faulty, replace=True)
    sent: list[str] = []
    try:
        async with Producer("FaultP", [cluster.ns]) as p:
            for i in range(6):
                sent += await send(p, "FaultPopT", 20, len(sent))
                sent += await send(p, "FaultPullT", 10, len(sent))
                if i == 2:
                    newcomer = await g.add()  # a membership change while the broker cannot assign
                    assert newcomer.mode_rebalance is not None
                    newcomer.mode_rebalance.pop_refresh_s = 0
                await asyncio.sleep(0.4)
            await until(lambda: calls["total"] >= 8, 20)
            await until(lambda: set(sent) <= set(g.seen), 30)
    finally:
        dispatch.register(RequestCode.QUERY_ASSIGNMENT, original, replace=True)
    for c in g.members[:3]:
        assert c.mode_rebalance is not None
        assert c.mode_rebalance.cache.history == histories[c.client_id], "a failure changed a mode"
        assert c.mode_rebalance.counters.assignment_failures > 0
    newcomer = g.members[3]
    assert newcomer.mode_rebalance is not None
    assert newcomer.mode_rebalance.cache.get("FaultPopT") == TopicMode(RequestMode.POP, 0)  # from the table
    assert not any(mq.topic == "FaultPopT" for c in g.members for mq in c.assigned_queues()), (
        "POP topic pulled"
    )
    pop_dups = {m: n for m, n in g.by_topic["FaultPopT"].items() if n > 1}
    assert pop_dups == {}, "nothing was left unacked, so nothing may come twice"
    assert set(g.seen) == set(sent)


async def test_slow_handler_stays_invisible_and_failures_come_back(
    cluster: Cluster, groups: Callable[..., Group]
) -> None:
    await create_topic(cluster, "SlowT", 2)
    await set_mode(cluster, "SlowG", "SlowT", "POP", 0)
    deliveries: Counter[str] = Counter()
    failed_once: set[str] = set()

    async def handler(msg: MessageExt) -> bool:
        deliveries[msg.body.decode()] += 1
        body = msg.body.decode()
        if body.endswith("-0"):
            await asyncio.sleep(2.5)  # longer than the 1.5 s invisible time: renewed meanwhile
        if body.endswith("-1") and body not in failed_once:
            failed_once.add(body)
            return False  # comes back after the first back-off step
        return True

    c = PushConsumer("SlowG", [cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                     long_poll_s=1.0, rebalance_interval_s=1.0, pop_invisible_time_ms=1500)  # fmt: skip
    c.subscribe("SlowT")
    c.register_listener(handler)
    c.pop_consumption.delay_levels_s = (1.0,)
    await c.start()
    other = PushConsumer("SlowG", [cluster.ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                         long_poll_s=1.0, rebalance_interval_s=1.0, pop_invisible_time_ms=1500)  # fmt: skip
    other.subscribe("SlowT")
    other.register_listener(handler)
    other.pop_consumption.delay_levels_s = (1.0,)
    await other.start()
    try:
        async with Producer("SlowP", [cluster.ns]) as p:
            await send(p, "SlowT", 3)
        await until(
            lambda: deliveries["SlowT-0"] >= 1 and deliveries["SlowT-1"] >= 2 and deliveries["SlowT-2"] >= 1
        )
        await asyncio.sleep(1.0)
    finally:
        await c.shutdown()
        await other.shutdown()
    assert deliveries["SlowT-0"] == 1, "the slow message was renewed, not redelivered"
    assert c.pop_consumption.counters.extended + other.pop_consumption.counters.extended >= 1
    assert deliveries["SlowT-1"] == 2 and deliveries["SlowT-2"] == 1


async def test_upstream_policy_consumes_both_kinds_through_the_broker(
    cluster: Cluster, groups: Callable[..., Group]
) -> None:
    await create_topic(cluster, "UpPopT", 2)
    await create_topic(cluster, "UpPullT", 2)
    await set_mode(cluster, "UpG", "UpPopT", "POP", 0)
    g = groups("UpG", ["UpPopT", "UpPullT"], rebalance_policy=RebalancePolicy.BROKER)
    c = await g.add()
    async with Producer("UpP", [cluster.ns]) as p:
        sent = await send(p, "UpPopT", 5) + await send(p, "UpPullT", 5)
    await until(lambda: set(sent) <= set(g.seen))
    assert c.mode_rebalance is not None and c.mode_rebalance.counters.mode_reads == 0
    assert c.pop_consumption.assigned("UpPopT") and {mq.topic for mq in c.assigned_queues()} >= {"UpPullT"}


async def test_pop_leftovers_are_drained_by_pull_after_a_switch_to_pull(
    cluster: Cluster, groups: Callable[..., Group]
) -> None:
    """A member popped messages and died without acking; the topic then went back to PULL. The broker
    revives those messages into the POP retry topic, and the PULL members drain it."""
    await create_topic(cluster, "LeftT", 2)
    await set_mode(cluster, "LeftG", "LeftT", "POP", 0)
    async with Producer("LeftP", [cluster.ns]) as p:
        sent = await send(p, "LeftT", 6)
    assert cluster.broker is not None
    header = PopMessageRequestHeader(
        consumer_group="LeftG", topic="LeftT", queue_id=-1, max_msg_nums=32, invisible_time=1000, poll_time=0,
        born_time=0, init_mode=INIT_MODE_MIN,
    )  # fmt: skip
    raw = RemotingClient()
    popped: set[bytes] = set()
    try:
        async with asyncio.timeout(10):
            while len(popped) < len(sent):  # the dying member: pops, never acks
                r = await raw.invoke(
                    cluster.broker.address,
                    RemotingCommand.request(RequestCode.POP_MESSAGE, header.to_fields()),
                    5,
                )
                popped |= {rec.body for rec in decode_records(r.body_bytes())} if r.code == 0 else set()
    finally:
        await raw.close()
    await set_mode(cluster, "LeftG", "LeftT", "PULL")
    g = groups("LeftG", ["LeftT"])
    c = await g.add()
    assert c.mode_rebalance is not None
    c.mode_rebalance.reconcile_interval_s = 0.3  # look for the retry topic often (the revive creates it)
    await until(lambda: set(sent) <= set(g.seen), 20)
    assert set(g.by_topic) >= {"LeftT"} and not any(
        t.startswith("%RETRY%") for t in g.by_topic if g.by_topic[t]
    )
    assert c.mode_rebalance.drain_topics == {"%RETRY%LeftG_LeftT"}
    assert not c.pop_consumption.assigned()
