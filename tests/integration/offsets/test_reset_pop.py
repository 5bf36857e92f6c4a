"""Offset resets seen by POP consumers (the SDK's PushConsumer on a topic the broker serves by POP for the
group), made through the AdminClient: a never-seen group across a broker restart starts popping at the reset
point; a reset while the group pops moves its next pops there (messages before it are not popped again)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

from orbitmq.admin import AdminClient
from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere, MessageExt
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from tests.integration.offsets.conftest import Cluster
from tests.integration.offsets.test_reset_consumers import create_topic, send


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def pop_mode(c: Cluster, group: str, topic: str) -> None:
    body = orjson.dumps({"topic": topic, "consumerGroup": group, "mode": "POP", "popShareQueueNum": 0})
    client = RemotingClient()
    try:
        request = RemotingCommand.request(RequestCode.SET_MESSAGE_REQUEST_MODE, {}, body)
        assert (await client.invoke(c.b.address, request, 5)).code == ResponseCode.SUCCESS
    finally:
        await client.close()


def pop_consumer(c: Cluster, group: str, topic: str, sink: list[MessageExt]) -> PushConsumer:
    pc = PushConsumer(group, [c.namesrv.addr], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                      long_poll_s=1.0, rebalance_interval_s=1.0)  # fmt: skip
    pc.subscribe(topic, "*")
    pc.register_listener(sink.append)
    return pc


def positions(msgs: list[MessageExt]) -> list[tuple[int, int]]:
    return sorted((m.queue_id, m.queue_offset) for m in msgs)


async def test_pop_group_never_seen_then_restart_pops_from_the_reset_point(cluster: Cluster) -> None:
    await create_topic(cluster, "PopNeverT", 2)
    await send(cluster, "PopNeverT", range(20), 2)
    await pop_mode(cluster, "PopNeverG", "PopNeverT")
    async with AdminClient(cluster.namesrv.addr) as admin:
        await admin.reset_offset("PopNeverG", "PopNeverT", offset=7)
    await cluster.restart_broker()
    got: list[MessageExt] = []
    pc = pop_consumer(cluster, "PopNeverG", "PopNeverT", got)
    await pc.start()
    try:
        await until(lambda: len(got) >= 6)
        assert pc.pop_consumption.assigned("PopNeverT"), "consumed by POP, not by pull"
    finally:
        await pc.shutdown()
    assert positions(got) == [(q, o) for q in (0, 1) for o in (7, 8, 9)]


async def test_reset_while_popping_moves_the_next_pops(cluster: Cluster) -> None:
    await create_topic(cluster, "PopLiveT", 2)
    await send(cluster, "PopLiveT", range(20), 2)
    await pop_mode(cluster, "PopLiveG", "PopLiveT")
    got: list[MessageExt] = []
    pc = pop_consumer(cluster, "PopLiveG", "PopLiveT", got)
    async with AdminClient(cluster.namesrv.addr) as admin:
        await admin.reset_offset("PopLiveG", "PopLiveT", offset=0)
        await pc.start()
        try:
            await until(lambda: len(got) == 20)
            async with asyncio.timeout(20):  # every pop acked: the group's offsets are past all 20
                while sum(q.consumer_offset for q in await admin.show_offsets("PopLiveG", "PopLiveT")) != 20:
                    await asyncio.sleep(0.05)
            got.clear()
            await admin.reset_offset("PopLiveG", "PopLiveT", offset=6)
            await until(lambda: len(got) >= 8)
        finally:
            await pc.shutdown()
    assert positions(got) == [(q, o) for q in (0, 1) for o in (6, 7, 8, 9)]
