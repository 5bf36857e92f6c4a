"""A NameServer and two brokers (broker-a, broker-b) of DefaultCluster, in-process on port 0 with tmp stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orbitmq.admin import AdminClient
from orbitmq.broker import BrokerApp, BrokerConfig
from orbitmq.namesrv import NamesrvApp, NamesrvConfig
from orbitmq.store import StoreConfig


@dataclass
class TwoBrokers:
    namesrv: NamesrvApp
    brokers: dict[str, BrokerApp]
    admin: AdminClient


@pytest.fixture
async def two_brokers(tmp_path: Path) -> AsyncIterator[TwoBrokers]:
    namesrv = NamesrvApp(NamesrvConfig(port=0))
    await namesrv.start()
    brokers: dict[str, BrokerApp] = {}
    try:
        for name in ("broker-a", "broker-b"):
            store = StoreConfig(
                store_path_root_dir=str(tmp_path / name),
                mapped_file_size_commit_log=1024 * 1024,
                mapped_file_size_consume_queue=6000,
            )
            cfg = BrokerConfig(broker_name=name, listen_port=0, namesrv_addr=(namesrv.addr,))
            brokers[name] = BrokerApp(cfg, store)
            await brokers[name].start()
        admin = AdminClient(namesrv.addr)
        yield TwoBrokers(namesrv, brokers, admin)
        await admin.close()
    finally:
        for b in brokers.values():
            await b.stop()
        await namesrv.stop()
