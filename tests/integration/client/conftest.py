"""A real NameServer + Broker on free ports in tmp dirs, for SDK tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.store import StoreConfig

SHORT_DELAY_LEVELS = " ".join(["1s"] * 18)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.namesrv = NamesrvApp(NamesrvConfig(port=0))
        self.root = root
        self.broker: BrokerApp | None = None

    @property
    def ns(self) -> str:
        return self.namesrv.addr

    async def start(self) -> Cluster:
        await self.namesrv.start()
        cfg = BrokerConfig(
            listen_port=0, namesrv_addr=(self.namesrv.addr,), message_delay_level=SHORT_DELAY_LEVELS
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
