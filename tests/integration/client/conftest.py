"""A real NameServer + Broker on free ports in tmp dirs, for SDK tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.store import StoreConfig

SHORT_DELAY_LEVELS = " ".join(["1s"] * 18)


class Cluster:
    def __init__(self, root: Path, delay_levels: str = SHORT_DELAY_LEVELS, **broker_options: Any) -> None:
        self.namesrv = NamesrvApp(NamesrvConfig(port=0))
        self.root = root
        self.delay_levels = delay_levels
        self.broker_options = broker_options  # more BrokerConfig fields, for tests that need them
        self.broker: BrokerApp | None = None

    @property
    def ns(self) -> str:
        return self.namesrv.addr

    async def start(self) -> Cluster:
        await self.namesrv.start()
        cfg = BrokerConfig(
            listen_port=0,
            namesrv_addr=(self.namesrv.addr,),
            message_delay_level=self.delay_levels,
            **self.broker_options,
        )
        store = StoreConfig(
            store_path_root_dir=str(self.root / "store"),
            mapped_file_size_commit_log=4 * 1024 * 1024,
            mapped_file_size_consume_queue=20 * 1024,
        )
        self.broker = BrokerApp(cfg, store)
        await self.broker.start()
        return self

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
        await self.namesrv.stop()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = await Cluster(tmp_path).start()
    try:
        yield c
    finally:
        await c.stop()


async def create_topic(cluster: Cluster, topic: str, queues: int = 8, attributes: str = "") -> None:
    """UPDATE_AND_CREATE_TOPIC on the broker, then wait until the NameServer routes it (the broker
    re-registers at once on a topic change)."""
    from orbitmq.client.instance import ClientInstance
    from orbitmq.core.errors import BrokerError
    from orbitmq.protocol.codes import RequestCode

    assert cluster.broker is not None
    inst = ClientInstance([cluster.ns])
    try:
        await inst.request(
            cluster.broker.address, RequestCode.UPDATE_AND_CREATE_TOPIC,
            {"topic": topic, "defaultTopic": "TBW102", "readQueueNums": queues, "writeQueueNums": queues,
             "perm": 6, "topicFilterType": "SINGLE_TAG", "order": False,
             **({"attributes": attributes} if attributes else {})},
        )  # fmt: skip
        async with asyncio.timeout(10):
            while True:
                try:
                    route = await inst.route(topic, refresh=True)
                    if len(route.subscribe_queues) == queues:
                        return
                except BrokerError:
                    pass
                await asyncio.sleep(0.05)
    finally:
        await inst.close()


async def until(pred: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Wait for a condition that some background activity makes true (polled every 20 ms)."""
    async with asyncio.timeout(timeout_s):
        while not pred():
            await asyncio.sleep(0.02)
