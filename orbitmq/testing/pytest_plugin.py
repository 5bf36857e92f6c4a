"""pytest fixtures that give a test a running OrbitMQ (NameServer, Broker, gRPC Proxy) on free ports in a temp
dir.

Installed with the package and registered through the ``pytest11`` entry point, so a project that
depends on ``orbitmq`` just uses the fixtures (or loads it by hand: ``pytest -p orbitmq.testing.pytest_plugin``):

    def test_send(orbitmq_server):                      # a fresh server for this test
        orbitmq_server.create_topic("Orders")
        producer = MyProducer(namesrv=orbitmq_server.namesrv_addr)
        ...

    def test_many(orbitmq_session_server): ...          # one server shared by the whole session

    @pytest.mark.orbitmq(autoCreateTopicEnable=False)    # RocketMQ properties for orbitmq_server
    def test_strict(orbitmq_server): ...

The fixtures are synchronous: the servers run on an event loop of their own in a background thread, so
synchronous tests, asyncio tests (any loop) and client libraries that run their own threads all reach
them over TCP, as they would reach a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the server is imported when a test asks for it, not when pytest loads the plugin
    from orbitmq.testing.embedded import EmbeddedOrbitMQ

__all__ = ["orbitmq_server", "orbitmq_session_server"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "orbitmq(**properties): RocketMQ properties for the orbitmq_server fixture"
    )


def _property_value(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _properties(request: pytest.FixtureRequest) -> Mapping[str, str]:
    marker = request.node.get_closest_marker("orbitmq")
    kwargs = marker.kwargs if marker is not None else {}
    return {key: _property_value(value) for key, value in kwargs.items()}


@pytest.fixture
def orbitmq_server(request: pytest.FixtureRequest) -> Iterator[EmbeddedOrbitMQ]:
    """A NameServer + Broker + Proxy for this test only (``.namesrv_addr``, ``.proxy_endpoint``,
    ``.create_topic``, ...)."""
    from orbitmq.testing.embedded import EmbeddedOrbitMQ

    with EmbeddedOrbitMQ(properties=_properties(request)) as mq:
        yield mq


@pytest.fixture(scope="session")
def orbitmq_session_server() -> Iterator[EmbeddedOrbitMQ]:
    """One NameServer + Broker + Proxy shared by every test of the session: use distinct topics and groups."""
    from orbitmq.testing.embedded import EmbeddedOrbitMQ

    with EmbeddedOrbitMQ() as mq:
        yield mq
