"""Asynchronous CK/ACK storage (appendCkAsync / appendAckAsync, pop-and-storage S1): the request is answered
before the checkpoint is stored, the offset commit waits for it, a failing write is retried (never
dropped), and past the pending bound requests wait (back-pressure)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbitmq.broker import BrokerApp, BrokerConfig
from orbitmq.core.clock import FakeClock
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import PopMessageRequestHeader, revive_topic
from orbitmq.store import StoreConfig
from orbitmq.store.api import MessageToStore, PutResult, PutStatus
from orbitmq.store.memory import MemoryMessageStore

REVIVE = revive_topic("DefaultCluster")


class GatedStore(MemoryMessageStore):
    """Revive-log writes wait for ``gate`` (a slow flush) and fail while ``failing`` is set."""

    def __init__(self, config: StoreConfig, clock: FakeClock) -> None:
        super().__init__(config, clock=clock)
        self.gate = asyncio.Event()
        self.gate.set()
        self.failing = 0

    async def put_message(self, msg: MessageToStore) -> PutResult:
        if msg.topic == REVIVE:
            await self.gate.wait()
            if self.failing:
                self.failing -= 1
                return PutResult(PutStatus.SERVICE_NOT_AVAILABLE, remark="injected")
        return await super().put_message(msg)


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[tuple[BrokerApp, GatedStore, RemotingClient]]:
    clock = FakeClock()
    store_config = StoreConfig(store_path_root_dir=str(tmp_path))
    store = GatedStore(store_config, clock)
    cfg = dataclasses.replace(BrokerConfig(listen_port=0), append_ck_async=True, append_ack_async=True,
                              pop_ck_offset_max_queue_size=2)  # fmt: skip
    app = BrokerApp(cfg, store_config, clock=clock, store=store)
    await app.start()
    client = RemotingClient()
    yield app, store, client
    await client.close()
    store.gate.set()
    await app.stop()


async def send(app: BrokerApp, client: RemotingClient, n: int) -> None:
    for i in range(n):
        fields = {"a": "PG", "b": "AS", "c": "TBW102", "d": "1", "e": "0", "f": "0", "g": "0", "h": "0",
                  "i": "", "j": "0", "k": "false"}  # fmt: skip
        cmd = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, fields, f"m{i}".encode())
        assert (await client.invoke(app.address, cmd, 5)).code == ResponseCode.SUCCESS


async def pop_once(app: BrokerApp, client: RemotingClient, max_nums: int = 1) -> RemotingCommand:
    h = PopMessageRequestHeader("G", "AS", 0, max_nums, 60_000, 0, app.clock.now_ms(), 0)
    return await client.invoke(
        app.address, RemotingCommand.request(RequestCode.POP_MESSAGE, h.to_fields()), 5
    )


async def test_answer_before_the_flush_commit_after_it(
    gated: tuple[BrokerApp, GatedStore, RemotingClient],
) -> None:
    app, store, client = gated
    await send(app, client, 2)
    store.gate.clear()  # the revive log's flush is slow
    r = await asyncio.wait_for(pop_once(app, client), 5)  # answered although the CK is not stored
    assert r.code == ResponseCode.SUCCESS
    assert app.pop is not None and app.pop.pending_writes == 1
    assert app.offsets.query_offset("G", "AS", 0) == 0  # the commit waits for the checkpoint
    store.gate.set()
    await app.pop.writer.barrier()
    assert app.offsets.query_offset("G", "AS", 0) == 1 and app.pop.pending_writes == 0


async def test_failed_checkpoint_writes_are_retried(
    gated: tuple[BrokerApp, GatedStore, RemotingClient],
) -> None:
    app, store, client = gated
    await send(app, client, 1)
    store.failing = 3
    assert (await pop_once(app, client)).code == ResponseCode.SUCCESS
    assert app.pop is not None
    clock = app.clock
    assert isinstance(clock, FakeClock)
    for _ in range(20):
        if app.pop.pending_writes == 0:
            break
        await clock.advance(1)
    assert app.pop.retries == 3 and app.pop.writer.stored == 1
    assert app.offsets.query_offset("G", "AS", 0) == 1


async def test_full_pending_queue_makes_requests_wait(
    gated: tuple[BrokerApp, GatedStore, RemotingClient],
) -> None:
    app, store, client = gated
    await send(app, client, 3)
    store.gate.clear()
    assert (await pop_once(app, client)).code == 0 and (await pop_once(app, client)).code == 0
    third = asyncio.create_task(pop_once(app, client))
    await asyncio.sleep(0.05)
    assert not third.done()  # the bound (popCkOffsetMaxQueueSize=2) was reached: back-pressure
    assert app.pop is not None and app.pop.fallbacks == 1
    store.gate.set()
    assert (await asyncio.wait_for(third, 5)).code == ResponseCode.SUCCESS
    await app.pop.writer.barrier()
    assert app.offsets.query_offset("G", "AS", 0) == 3
