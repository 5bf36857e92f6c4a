"""Time as an injected dependency.

Components never call ``time.time()`` or ``asyncio.sleep()`` directly: they take a :class:`Clock`, so a
test can run hours of revive schedules or expiry timers in milliseconds with :class:`FakeClock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol

__all__ = ["Clock", "FakeClock", "RealClock"]

#: Loop turns ``FakeClock.advance`` gives the tasks a wake-up resumes before time moves on: enough for a
#: woken task to finish its step and start its next sleep through a few nested awaits and helper tasks.
_SETTLE_YIELDS = 10


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds since the epoch (store timestamps, born timestamps)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards (timeouts, intervals)."""

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Suspend the awaiting task for ``seconds`` of this clock's time, counted from this call."""


class RealClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`.

    Sleepers are woken in deadline order; ``advance`` yields to the loop after each wake-up so the woken
    tasks run before time moves on, exactly as they would have with a real clock.
    """

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms / 1000.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return round(self._now * 1000)

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> asyncio.Future[None]:
        # The deadline is fixed when sleep is called, not when an awaiting task first runs: callers wrap
        # the sleep in a task (sleep-unless-woken), and an advance() between the two must not push it later.
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if seconds <= 0:
            loop.call_soon(_resolve, fut)
        else:
            heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        return fut

    async def advance(self, seconds: float) -> None:
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            for _ in range(_SETTLE_YIELDS):
                await asyncio.sleep(0)
        self._now = target
        await asyncio.sleep(0)

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
