"""The official RocketMQ 5 Python client (rocketmq-python-client 5.1.2), unmodified and in this test's own
process, against the ``orbitmq_server`` pytest fixture: what a user of the plugin does."""

from __future__ import annotations

import time

from rocketmq import ClientConfiguration, Credentials, FilterExpression, Message, Producer, SimpleConsumer

from orbitmq.testing.embedded import EmbeddedOrbitMQ

pytest_plugins = ["orbitmq.testing.pytest_plugin"]

TOPIC, GROUP = "OfficialT", "OfficialG"


def test_official_python_client_sends_and_receives_through_the_fixture(
    orbitmq_server: EmbeddedOrbitMQ,
) -> None:
    orbitmq_server.create_topic(TOPIC, queues=2, message_type="NORMAL")
    config = ClientConfiguration(orbitmq_server.proxy_endpoint, Credentials(), request_timeout=5)
    producer = Producer(config, (TOPIC,))
    producer.startup()
    try:
        for i in range(3):
            msg = Message()
            msg.topic, msg.body, msg.tag, msg.keys = TOPIC, f"m{i}".encode(), "TagA", f"k{i}"
            assert producer.send(msg).message_id
    finally:
        producer.shutdown()

    consumer = SimpleConsumer(config, GROUP, {TOPIC: FilterExpression("TagA")}, await_duration=2)
    consumer.startup()
    got: dict[bytes, int] = {}
    try:
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            for m in consumer.receive(16, 15):
                got[m.body] = m.delivery_attempt
                consumer.ack(m)
    finally:
        consumer.shutdown()
    assert got == {b"m0": 1, b"m1": 1, b"m2": 1}
    assert orbitmq_server.broker is not None
    stats = orbitmq_server.broker.stats
    assert stats.messages_in[(TOPIC, "normal")] == 3 and stats.messages_out[(TOPIC, GROUP)] == 3
