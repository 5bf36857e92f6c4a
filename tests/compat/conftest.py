"""Fixtures for the compat tests: the real RocketMQ clients run as separate processes.

Every test collected under ``tests/compat`` gets the ``compat`` marker (select with ``-m compat`` or skip
with ``-m "not compat"``). Tests that need Node use the ``alions`` fixture, which skips with a clear reason
only when ``node`` is not on PATH, fails when the pinned ali-ons install is missing or wrong, and kills every
process it started at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.compat.alions import NodeProcesses, check_node_environment

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.compat)


@pytest.fixture(scope="session")
def node_environment() -> None:
    """Skips the requesting test when `node` is missing; fails it when ali-ons is not installed as pinned."""
    try:
        reason = check_node_environment()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
async def alions(node_environment: None) -> AsyncIterator[NodeProcesses]:
    """Starts ali-ons producer/consumer processes (``alions.start_producer(...)``, ``start_consumer(...)``)
    and kills any still running when the test ends."""
    procs = NodeProcesses()
    try:
        yield procs
    finally:
        await procs.aclose()
