"""A client timer as a :class:`Service`: run an action every interval, or at once when woken.

The action may return a shorter delay for the next round (the rebalance service retries after 1 s when a
round could not take every queue it was given, as the Java client's ``minInterval``). An action that
raises an :class:`OrbitError` is logged and tried again next round: a broker that is down for a while
must not stop a consumer's timers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from orbitmq.core.errors import OrbitError
from orbitmq.core.service import Service

__all__ = ["Periodic"]

log = logging.getLogger("orbitmq.client")


class Periodic(Service):
    def __init__(
        self,
        name: str,
        interval_s: float,
        action: Callable[[], Awaitable[float | None]],
        *,
        first_delay_s: float | None = None,
    ) -> None:
        super().__init__(name)
        self.interval_s, self.action = interval_s, action
        self.first_delay_s = interval_s if first_delay_s is None else first_delay_s
        #: Rounds run so far (a plain counter for metrics and tests).
        self.rounds = 0

    async def run(self) -> None:
        delay: float | None = self.first_delay_s
        while not self.stopping:
            await self.wait_for_wakeup(self.interval_s if delay is None else delay)
            if self.stopping:
                return
            try:
                delay = await self.action()
            except OrbitError as exc:
                log.info("%s failed: %s", self.name, exc)
                delay = None
            self.rounds += 1
