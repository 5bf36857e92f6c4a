"""``/metrics`` scraped over HTTP after a short workload: the counters match what the workload did."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orbitmq.admin import AdminClient
from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig
from orbitmq.cli.metrics import MetricsHttpServer, OrbitCollector, metrics_registry
from orbitmq.client import ConsumeFromWhere, Message, MessageExt, Producer, PushConsumer
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.store import FlushDiskType, StoreConfig

TOPIC, GROUP, BODY = "MetricsT", "MetricsCG", b"m" * 100


class Scraper:
    def __init__(self, namesrv: NamesrvApp, broker: BrokerApp, http: MetricsHttpServer) -> None:
        self.namesrv, self.broker, self.http = namesrv, broker, http

    async def get(self, path: str = "/metrics") -> str:
        url = f"http://{self.http.address}{path}"

        def fetch() -> str:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read().decode()

        return await asyncio.to_thread(fetch)

    async def scrape(self) -> Callable[..., float]:
        """A lookup: ``value(name, **labels)`` sums the samples of ``name`` whose labels include ``labels``."""
        samples = [s for fam in text_string_to_metric_families(await self.get()) for s in fam.samples]

        def value(name: str, **labels: str) -> float:
            found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
            assert found, f"no sample {name} {labels}"
            return sum(found)

        return value


@pytest.fixture
async def scraper(tmp_path: Path) -> AsyncIterator[Scraper]:
    namesrv = NamesrvApp(NamesrvConfig(port=0))
    await namesrv.start()
    broker = BrokerApp(
        BrokerConfig(listen_port=0, namesrv_addr=(namesrv.addr,)),
        StoreConfig(
            str(tmp_path), flush_disk_type=FlushDiskType.SYNC_FLUSH, mapped_file_size_commit_log=4 << 20
        ),
    )
    await broker.start()
    collector = OrbitCollector()
    collector.add_namesrv(namesrv)
    collector.add_broker(lambda: broker)
    http = MetricsHttpServer(metrics_registry(collector), "127.0.0.1", 0)
    await http.start()
    try:
        yield Scraper(namesrv, broker, http)
    finally:
        await http.stop()
        await broker.stop()
        await namesrv.stop()


async def _until(pred: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not pred():
            await asyncio.sleep(0.02)


async def test_counters_match_a_short_workload(scraper: Scraper) -> None:
    ns = scraper.namesrv.addr
    async with AdminClient(ns) as admin:
        await admin.create_topic(TOPIC, queues=2)
    got: list[MessageExt] = []
    consumer = PushConsumer(GROUP, [ns], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                            long_poll_s=1.0)  # fmt: skip
    consumer.subscribe(TOPIC)
    consumer.register_listener(got.append)
    async with Producer("MetricsPG", [ns]) as producer:
        for i in range(20):
            await producer.send(Message(TOPIC, BODY, keys=[f"k{i}"]))
        await producer.send_batch([Message(TOPIC, BODY) for _ in range(5)])
        await consumer.start()
        try:
            await _until(lambda: len(got) == 25)
            await _until(lambda: scraper.broker.long_polling.held_count > 0)  # caught up: pulls now wait
            value = await scraper.scrape()
            broker = {"node_id": "broker-a", "topic": TOPIC}
            assert value("rocketmq_messages_in_total", **broker, message_type="normal") == 25
            assert value("rocketmq_throughput_in_total", **broker) == 25 * len(BODY)
            assert (
                value("rocketmq_messages_out_total", **broker, consumer_group=GROUP, is_retry="false") == 25
            )
            assert value("rocketmq_throughput_out_total", **broker, consumer_group=GROUP) > 25 * len(BODY)
            requests = {"node_type": "broker"}
            assert value("orbitmq_remoting_requests_total", **requests, request_code="send_message_v2") == 20
            assert (
                value("orbitmq_remoting_requests_total", **requests, request_code="send_batch_message") == 1
            )
            assert value("orbitmq_store_append_latency_seconds_count", node_id="broker-a") == 21
            assert value("orbitmq_store_group_commit_batch_size_sum", node_id="broker-a") == 21
            assert (
                value("orbitmq_store_flush_latency_seconds_count") == value("orbitmq_store_flushes_total") > 0
            )
            assert value("rocketmq_producer_connections", node_id="broker-a") == 1
            assert value("rocketmq_consumer_connections", consumer_group=GROUP, consume_mode="push") == 1
            assert value("orbitmq_rebalance_requests_total", kind="get_consumer_list") >= 1
            assert value("orbitmq_longpoll_held", node_id="broker-a") >= 1
            assert value("orbitmq_longpoll_holds_total", node_id="broker-a") >= 1
            assert value("orbitmq_namesrv_brokers") == 1
            assert value("orbitmq_namesrv_broker_registrations_total") >= 1
            assert value("orbitmq_store_writable") == 1
            assert value("process_resident_memory_bytes") > 0
        finally:
            await consumer.shutdown()  # commits the offsets of everything consumed
    value = await scraper.scrape()
    lag = {"topic": TOPIC, "consumer_group": GROUP}
    assert value("rocketmq_consumer_lag_messages", **lag) == 0
    assert value("rocketmq_consumer_inflight_messages", **lag) == 0
    assert value("rocketmq_consumer_lag_latency", **lag) == 0


async def test_lag_counts_what_a_group_has_not_committed(scraper: Scraper) -> None:
    broker = scraper.broker
    async with AdminClient(scraper.namesrv.addr) as admin:
        await admin.create_topic(TOPIC, queues=1)
    async with Producer("MetricsPG", [scraper.namesrv.addr]) as producer:
        for _ in range(7):
            await producer.send(Message(TOPIC, BODY))
    broker.offsets.commit_offset(GROUP, TOPIC, 0, 2)  # consumed 2 of 7
    broker.offsets.commit_pull_offset(GROUP, TOPIC, 0, 5)  # 3 more delivered, not yet committed
    value = await scraper.scrape()
    lag = {"topic": TOPIC, "consumer_group": GROUP}
    assert value("rocketmq_consumer_lag_messages", **lag) == 5
    assert value("rocketmq_consumer_inflight_messages", **lag) == 3
    assert value("rocketmq_consumer_ready_messages", **lag) == 2
    assert value("rocketmq_consumer_lag_latency", **lag) >= 0


async def test_a_bad_frame_is_counted_and_logged(scraper: Scraper, caplog: pytest.LogCaptureFixture) -> None:
    host, port = scraper.broker.address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # HTTP to the remoting port
    await writer.drain()
    assert await reader.read() == b""  # the broker closed the connection
    writer.close()
    value = await scraper.scrape()
    assert value("orbitmq_remoting_bad_frames_total", node_type="broker") == 1
    assert value("orbitmq_remoting_bad_frames_total", node_type="namesrv") == 0
    assert any(getattr(r, "event", None) == "bad_frame" for r in caplog.records)


async def test_other_paths_and_methods_are_refused(scraper: Scraper) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        await scraper.get("/")
    assert err.value.code == 404
    host, port = scraper.http.address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /metrics HTTP/1.1\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 405")
    writer.close()
    assert "rocketmq_broker_permission" in await scraper.get("/metrics?x=1")
