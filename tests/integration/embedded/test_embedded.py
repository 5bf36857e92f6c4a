"""EmbeddedOrbitMQ: the synchronous and asynchronous forms, clean-up, configuration, and the SDK against it."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from pathlib import Path

import pytest

from orbitmq.client import ConsumeFromWhere, Message, MessageExt, Producer, PushConsumer
from orbitmq.core.errors import ConfigError
from orbitmq.testing.embedded import EmbeddedOrbitMQ


async def _round_trip(namesrv: str, topic: str, n: int = 5) -> list[bytes]:
    got: list[MessageExt] = []
    consumer = PushConsumer(f"{topic}-cg", [namesrv], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                            long_poll_s=1.0)  # fmt: skip
    consumer.subscribe(topic)
    consumer.register_listener(got.append)
    async with Producer(f"{topic}-pg", [namesrv]) as producer:
        for i in range(n):
            await producer.send(Message(topic, f"m{i}".encode()))
    await consumer.start()
    try:
        async with asyncio.timeout(15):
            while len(got) < n:
                await asyncio.sleep(0.02)
    finally:
        await consumer.shutdown()
    return sorted(m.body for m in got)


def _port_open(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) == 0


def test_synchronous_form_serves_the_sdk_and_cleans_up() -> None:
    with EmbeddedOrbitMQ(metrics=True) as mq:
        mq.create_topic("EmbSync", queues=2)
        assert asyncio.run(_round_trip(mq.namesrv_addr, "EmbSync")) == [f"m{i}".encode() for i in range(5)]
        with urllib.request.urlopen(mq.metrics_url, timeout=5) as resp:
            assert 'topic="EmbSync"' in resp.read().decode()
        data, addrs = mq.data_dir, [mq.namesrv_addr, mq.broker_addr, mq.proxy_endpoint]
        assert all(_port_open(a) for a in addrs)
        assert data.is_dir()
    assert not data.exists()
    assert not any(_port_open(a) for a in addrs)
    with pytest.raises(RuntimeError, match="not running"):
        _ = mq.namesrv_addr


async def test_asynchronous_form_on_the_running_loop(tmp_path: Path) -> None:
    async with EmbeddedOrbitMQ(data_dir=tmp_path / "d") as mq:
        await mq.create_topic_async("EmbAsync", queues=1)
        assert await _round_trip(mq.namesrv_addr, "EmbAsync", 3) == [b"m0", b"m1", b"m2"]
        with pytest.raises(RuntimeError, match="synchronous form"):
            mq.create_topic("Other")
    assert (tmp_path / "d" / "store" / "commitlog").is_dir()  # a given data dir is kept


async def test_properties_use_rocketmq_names_and_unknown_keys_fail() -> None:
    with pytest.raises(ConfigError, match="brokerNam"):
        EmbeddedOrbitMQ(properties={"brokerNam": "x"})
    async with EmbeddedOrbitMQ(properties={"brokerName": "emb-b", "brokerClusterName": "EmbCluster"}) as mq:
        assert mq.broker is not None and mq.broker.config.broker_name == "emb-b"
        assert mq.broker.config.broker_cluster_name == "EmbCluster"
        assert mq.broker.store.config.mapped_file_size_commit_log == 64 * 1024 * 1024  # test-sized store


def test_two_servers_side_by_side() -> None:
    with EmbeddedOrbitMQ() as a, EmbeddedOrbitMQ() as b:
        addrs = (
            {x.namesrv_addr for x in (a, b)}
            | {x.broker_addr for x in (a, b)}
            | {x.proxy_endpoint for x in (a, b)}
        )
        assert len(addrs) == 6
        assert a.data_dir != b.data_dir
