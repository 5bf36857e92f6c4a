"""The pytest plugin, loaded the way a user's project loads it, in a pytest run of its own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import asyncio

import pytest

from orbitmq.client import Message, Producer

SEEN = set()


async def send(namesrv, topic):
    async with Producer("pg", [namesrv]) as producer:
        return await producer.send(Message(topic, b"hello"))


def test_function_server(orbitmq_server):
    orbitmq_server.create_topic("PluginT")
    assert asyncio.run(send(orbitmq_server.namesrv_addr, "PluginT")).queue_offset == 0
    SEEN.add(orbitmq_server.namesrv_addr)


@pytest.mark.orbitmq(brokerName="marked-broker", autoCreateTopicEnable=False)
def test_marker_properties(orbitmq_server):
    assert orbitmq_server.broker.config.broker_name == "marked-broker"
    assert orbitmq_server.broker.config.auto_create_topic_enable is False
    SEEN.add(orbitmq_server.namesrv_addr)


def test_fresh_server_per_test():
    assert len(SEEN) == 2


@pytest.mark.parametrize("n", [1, 2])
def test_session_server_is_shared(orbitmq_session_server, n):
    SEEN.add(("session", orbitmq_session_server.namesrv_addr))
    assert len([s for s in SEEN if isinstance(s, tuple)]) == 1
"""


@pytest.mark.slow
def test_fixtures_in_a_users_test_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "orbitmq.testing.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
