from __future__ import annotations

import asyncio

import pytest

from orbitmq.core.clock import FakeClock
from orbitmq.core.service import (
    IllegalTransition,
    Service,
    ServiceEvent,
    ServiceGroup,
    ServiceState,
    transition,
)


def test_transition_table_rejects_illegal_moves() -> None:
    assert transition(ServiceState.NEW, ServiceEvent.START) is ServiceState.RUNNING
    assert transition(ServiceState.RUNNING, ServiceEvent.STOP) is ServiceState.STOPPING
    with pytest.raises(IllegalTransition):
        transition(ServiceState.RUNNING, ServiceEvent.START)
    with pytest.raises(IllegalTransition):
        transition(ServiceState.STOPPED, ServiceEvent.START)


class Ticker(Service):
    def __init__(self) -> None:
        super().__init__("ticker")
        self.ticks = 0
        self.stopped = False

    async def run(self) -> None:
        while not self.stopping:
            if await self.wait_for_wakeup(10):
                self.ticks += 1

    async def on_stop(self) -> None:
        self.stopped = True


async def test_service_wakes_and_stops() -> None:
    svc = Ticker()
    await svc.start()
    with pytest.raises(IllegalTransition):
        await svc.start()
    svc.wakeup()
    for _ in range(5):
        await asyncio.sleep(0)
    assert svc.ticks == 1
    await svc.stop()
    assert svc.state is ServiceState.STOPPED and svc.stopped


class Crasher(Service):
    def __init__(self) -> None:
        super().__init__("crasher")
        self.failed_with: BaseException | None = None

    async def run(self) -> None:
        raise RuntimeError("boom")

    def on_failed(self, exc: BaseException) -> None:
        self.failed_with = exc


async def test_a_dying_task_marks_the_service_failed_and_calls_on_failed() -> None:
    svc = Crasher()
    await svc.start()
    await asyncio.sleep(0.01)
    assert svc.state is ServiceState.FAILED
    assert isinstance(svc.failed_with, RuntimeError)
    await svc.stop()
    assert svc.state is ServiceState.STOPPED


class Recorder(Service):
    has_task = False

    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        super().__init__(name)
        self.log = log
        self.fail = fail

    async def on_start(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def on_stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_group_stops_in_reverse_and_unwinds_a_failed_start() -> None:
    log: list[str] = []
    group = ServiceGroup([Recorder("a", log), Recorder("b", log)])
    await group.start()
    await group.stop()
    assert log == ["start a", "start b", "stop b", "stop a"]
    log.clear()
    bad = ServiceGroup([Recorder("a", log), Recorder("b", log, fail=True), Recorder("c", log)])
    with pytest.raises(RuntimeError):
        await bad.start()
    assert log == ["start a", "stop a"]


async def test_fake_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = FakeClock(start_ms=0)
    woke: list[str] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append(f"{name}@{clock.now_ms()}")

    tasks = [asyncio.create_task(sleeper("late", 5)), asyncio.create_task(sleeper("early", 1))]
    await asyncio.sleep(0)
    await clock.advance(2)
    assert woke == ["early@1000"]
    await clock.advance(10)
    assert woke == ["early@1000", "late@5000"]
    assert clock.now_ms() == 12_000
    await asyncio.gather(*tasks)


class ClockTicker(Service):
    """Counts interval expiries (not wake-ups), on whatever clock it was given."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__("clock-ticker", wakeup_clock=clock)
        self.timeouts = 0
        self.wakeups = 0

    async def run(self) -> None:
        while not self.stopping:
            if await self.wait_for_wakeup(5.0):
                self.wakeups += 1
            else:
                self.timeouts += 1


async def test_wait_for_wakeup_measures_its_interval_on_the_injected_clock() -> None:
    clock = FakeClock()
    svc = ClockTicker(clock)
    await svc.start()
    while clock.sleepers == 0:  # the service's first interval has begun
        await asyncio.sleep(0)
    await clock.advance(4.9)
    assert svc.timeouts == 0
    await clock.advance(0.2)
    assert svc.timeouts == 1
    await clock.advance(15.0)
    assert svc.timeouts == 4
    svc.wakeup()
    for _ in range(5):
        await asyncio.sleep(0)
    assert svc.wakeups == 1
    # a wake-up cancels the pending clock sleep instead of leaving it to fire later
    assert clock.sleepers == 1
    await svc.stop()
    assert svc.state is ServiceState.STOPPED
