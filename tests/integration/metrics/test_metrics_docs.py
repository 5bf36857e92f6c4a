"""docs/operations.md documents every exported metric (and nothing else), and the Grafana dashboard in docs/
queries only metrics that exist: both checked against a live scrape of a server that saw some traffic."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orbitmq.client import ConsumeFromWhere, Message, MessageExt, Producer, PushConsumer
from orbitmq.testing.embedded import EmbeddedOrbitMQ

DOCS = Path(__file__).resolve().parents[3] / "docs"
OURS = re.compile(r"\b((?:rocketmq|orbitmq)_[a-z0-9_]+)")
_SUFFIXES = ("_bucket", "_sum", "_count")


async def _scrape_with_traffic(mq: EmbeddedOrbitMQ) -> str:
    """A send, a consumer that consumed it, a dead letter and a released long poll, then a scrape while the
    clients are connected: every labelled family has at least one sample."""
    await mq.create_topic_async("DocsT", queues=1)
    got: list[MessageExt] = []
    consumer = PushConsumer("DocsG", [mq.namesrv_addr], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                            long_poll_s=1.0)  # fmt: skip
    consumer.subscribe("DocsT")
    consumer.register_listener(got.append)
    async with Producer("DocsPG", [mq.namesrv_addr]) as producer:
        await producer.send(Message("DocsT", b"x"))
        await consumer.start()
        try:
            async with asyncio.timeout(15):
                while not got or not mq.broker or not mq.broker.long_polling.releases:
                    await asyncio.sleep(0.02)
            await consumer.persist_offsets()
            mq.broker.stats.record_dlq("DocsG")  # the DLQ family's name is what matters here
            return await asyncio.to_thread(_get, mq.metrics_url)
        finally:
            await consumer.shutdown()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Sample names of a scrape (``..._total``, ``..._bucket``, ...), ours only."""
    with EmbeddedOrbitMQ(metrics=True, properties={"flushDiskType": "SYNC_FLUSH"}) as mq:
        text = mq.run(_scrape_with_traffic(mq))
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples if OURS.match(s.name)}


def _family(sample: str, exported: set[str]) -> str:
    for suffix in _SUFFIXES:
        if sample.endswith(suffix) and sample.removesuffix(suffix) + "_count" in exported:
            return sample.removesuffix(suffix)
    return sample


def _documented() -> set[str]:
    text = (DOCS / "operations.md").read_text()
    table_rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {m.group(1) for row in table_rows for m in [OURS.search(row)] if m}


def test_every_exported_metric_is_documented_and_every_documented_one_exported(exported: set[str]) -> None:
    families = {_family(s, exported) for s in exported}
    documented = _documented()
    assert families - documented == set(), "exported but missing from docs/operations.md"
    assert documented - families == set(), "documented in docs/operations.md but not exported"


def test_grafana_dashboard_queries_only_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {name for e in exprs for name in OURS.findall(e)}
    families = {_family(s, exported) for s in exported}
    assert used - exported - families == set()
    assert {p["type"] for p in dashboard["panels"]} <= {"row", "timeseries", "stat"}
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"] if p["type"] != "row")
