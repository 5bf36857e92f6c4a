"""The proxy's counters in /metrics after the official Python client sent and received through it."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from rocketmq import ClientConfiguration, Credentials, FilterExpression, Message, Producer, SimpleConsumer

from orbitmq.testing.embedded import EmbeddedOrbitMQ


def test_proxy_counters_match_what_the_client_did() -> None:
    with EmbeddedOrbitMQ(metrics=True) as mq:
        mq.create_topic("ProxyMetricsT", queues=1, message_type="NORMAL")
        config = ClientConfiguration(mq.proxy_endpoint, Credentials(), request_timeout=5)
        producer = Producer(config, ("ProxyMetricsT",))
        producer.startup()
        for i in range(2):
            msg = Message()
            msg.topic, msg.body = "ProxyMetricsT", f"m{i}".encode()
            producer.send(msg)
        producer.shutdown()
        consumer = SimpleConsumer(
            config, "ProxyMetricsG", {"ProxyMetricsT": FilterExpression("*")}, await_duration=2
        )
        consumer.startup()
        received, deadline = 0, time.monotonic() + 30
        while received < 2 and time.monotonic() < deadline:
            for m in consumer.receive(16, 15):
                consumer.ack(m)
                received += 1
        consumer.shutdown()
        with urllib.request.urlopen(mq.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
    samples = {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k == "proxy_mode"))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.labels.get("node_type") == "proxy"
    }
    assert samples[("rocketmq_proxy_up", (("proxy_mode", "local"),))] == 1
    assert samples[("orbitmq_proxy_messages_sent_total", ())] == 2
    assert samples[("orbitmq_proxy_messages_received_total", ())] == 2
    assert samples[("orbitmq_proxy_acks_total", ())] == 2
    assert samples[("orbitmq_proxy_receives_total", ())] >= 1
    assert samples[("orbitmq_proxy_grpc_errors_total", ())] == 0
