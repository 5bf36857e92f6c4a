"""Pop consumption in the exported metrics: deliveries per topic and group, pops, acks, revive-log traffic."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orbitmq.cli.metrics import OrbitCollector, metrics_registry
from orbitmq.protocol.codes import ResponseCode
from tests.integration.pop.conftest import Cluster, ack, fake, make_cluster, pop, revive, send_many

__all__ = ["fake", "make_cluster"]  # fixtures used here


def scrape(c: Cluster) -> Callable[..., float]:
    collector = OrbitCollector()
    collector.add_broker(c.b)
    text = generate_latest(metrics_registry(collector)).decode()
    samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]

    def value(name: str, **labels: str) -> float:
        found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
        assert found, f"no sample {name} {labels}"
        return sum(found)

    return value


async def test_pops_acks_and_revives_are_counted(fake: Cluster) -> None:
    c = fake
    await send_many(c, "PopT", 5)
    popped = await pop(c, "PopT", queue_id=0, max_nums=3, invisible_ms=10_000)
    assert popped.code == ResponseCode.SUCCESS and len(popped.messages) == 3
    assert await ack(c, "PopT", popped.messages[0]) == ResponseCode.SUCCESS
    value = scrape(c)
    assert value("rocketmq_messages_out_total", topic="PopT", consumer_group="G") == 3
    assert value("orbitmq_pop_requests_total") == 1
    assert value("orbitmq_pop_messages_total") == 3
    assert value("orbitmq_pop_acked_messages_total") == 1
    assert value("orbitmq_pop_ack_requests_total", kind="single") == 1
    assert value("rocketmq_pop_revive_in_message_total", revive_message_type="CK") == 1
    assert value("rocketmq_pop_revive_in_message_total", revive_message_type="ACK") == 1
    assert value("orbitmq_pop_pending_writes") == 0
    assert await revive(c, 11) == 2  # the two unacked messages come back
    value = scrape(c)
    assert value("rocketmq_pop_revive_retry_messages_total") == 2
    assert value("rocketmq_pop_revive_out_message_total", revive_message_type="CK") == 1
