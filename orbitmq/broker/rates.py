"""Messages in and out per second, for GET_BROKER_RUNTIME_INFO (``putTps``, ``getTransferredTps``).

A :class:`RateMeter` counts events in one-second buckets on the injected clock and keeps the last
``horizon_s`` seconds; a rate averages whole seconds only (the current, unfinished second is left out), so
it needs no sampling task. Upstream reports each rate over 10, 60 and 600 seconds as ``"a b c"``.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from orbitmq.core.clock import Clock

__all__ = ["TPS_WINDOWS_S", "BrokerRates", "RateMeter"]

#: The windows of upstream's TPS strings (StoreStatsService): 10 s, 1 min, 10 min.
TPS_WINDOWS_S: Final = (10, 60, 600)


class RateMeter:
    """Events per second over recent windows; ``total`` counts every event since start."""

    def __init__(self, clock: Clock, horizon_s: int = max(TPS_WINDOWS_S)) -> None:
        if horizon_s <= 0:
            raise ValueError(f"horizon_s must be positive, got {horizon_s}")
        self.clock = clock
        self.horizon_s = horizon_s
        self.total = 0
        self._buckets: deque[list[int]] = deque()  # [second, count], oldest first

    def add(self, n: int = 1) -> None:
        second = int(self.clock.monotonic())
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([second, n])
            while self._buckets[0][0] <= second - self.horizon_s - 1:
                self._buckets.popleft()
        self.total += n

    def rate(self, window_s: int) -> float:
        """Average events per second over the last ``window_s`` whole seconds."""
        now = int(self.clock.monotonic())
        start = now - window_s
        return sum(c for s, c in self._buckets if start <= s < now) / window_s

    def tps_text(self) -> str:
        """``"r10 r60 r600"`` with two decimals, upstream's runtime-info format."""
        return " ".join(f"{self.rate(w):.2f}" for w in TPS_WINDOWS_S)


class BrokerRates:
    """The broker's message rates: ``put`` (records stored), ``get`` (records sent to pullers)."""

    def __init__(self, clock: Clock) -> None:
        self.put = RateMeter(clock)
        self.get = RateMeter(clock)
