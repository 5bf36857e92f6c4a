"""Long polling for ReceiveMessage: the poll time, the adaptive switch and pop-with-notify.

A client's receive waits up to its long-polling time. With several brokers behind the proxy, a plain broker
long-poll waits on one broker only, and a message arriving on another one is not seen before the poll ends:
a *false empty* answer. Pop-with-notify (issue 7, steps 1-7):

1. one immediate pop (no wait) — messages: answer (a *short-polling hit*);
2. otherwise a NOTIFICATION long-poll to every broker of the topic at once;
3. a broker that says it has messages is popped (one pop at a time per request); an empty pop (another
   consumer was faster) re-arms that broker's notification;
4. answer when messages are found or the time is up; every notification still out is cancelled.
5. Adaptive switch: when a (group, topic) receives often enough that its polls cover every broker anyway
   (``grpcClientConsumerPopWithNotifyThreshold`` requests per second per broker), a long poll is a plain
   long-poll pop on one broker, chosen round-robin.

The strategies only see :class:`PopOps` (pop / notify one broker), so they are tested without a broker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orbitmq.client.pop import PopResult, PopStatus
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.protocol.pop import NotificationResponseHeader
from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.counters import ProxyCounters
from orbitmq.proxy.status import Code, ProxyError

__all__ = [
    "BROKER_ANSWER_MARGIN_MS",
    "FalseEmptyTracker",
    "LongPoller",
    "PopOps",
    "RateMeter",
    "polling_time_ms",
]

log = logging.getLogger("orbitmq.proxy")

#: Client versions from which the Java proxy answers ILLEGAL_POLLING_TIME (older ones get BAD_REQUEST).
_ILLEGAL_POLLING_TIME_SINCE = "5.0.3"
#: Below this much time left a notification is not re-armed (the answer is due).
_REARM_MIN_MS = 20
#: Kept free between the end of a broker's wait and our own deadline, for its answer to arrive.
BROKER_ANSWER_MARGIN_MS = 200
#: An empty answer with more than the margin plus this left came back early (the broker did not hold it).
_EARLY_SLACK_MS = 100
#: Pauses before asking a broker that answered early (or failed) again: doubling up to the maximum.
_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 1.0
#: (group, topic) keys the rate meter and false-empty tracker remember (least recently used dropped).
KEYS_MAX = 10_000
#: A message stored this little before an empty answer is a race, not a false empty.
FALSE_EMPTY_SLACK_MS = 200


def polling_time_ms(
    requested_ms: int | None,
    remaining_ms: float | None,
    request_timeout_ms: int,
    config: ProxyConfig,
    client_version: str,
) -> int:
    """How long a receive may wait, with the Java proxy's rules (grpc-protocol.md §7.2): the client's long
    polling timeout (absent: the time left minus half its request timeout), raised to the minimum and capped
    at the maximum; when that exceeds the time left, the time left if it is still at least the minimum,
    else ILLEGAL_POLLING_TIME (BAD_REQUEST for clients older than 5.0.3). The reserve margin
    (``longPollingReserveTimeInMillis``) is kept free before the client's deadline."""
    lo = config.grpc_client_consumer_min_long_polling_timeout_millis
    hi = config.grpc_client_consumer_max_long_polling_timeout_millis
    reserve = config.long_polling_reserve_time_in_millis
    if requested_ms is None:
        requested_ms = int((remaining_ms if remaining_ms is not None else hi) - request_timeout_ms / 2)
    poll = min(max(requested_ms, lo), hi)
    if remaining_ms is None:
        return poll
    left = int(remaining_ms) - reserve
    if poll > left:
        if left >= lo:
            return left
        code = (
            Code.BAD_REQUEST
            if client_version and client_version < _ILLEGAL_POLLING_TIME_SINCE
            else (Code.ILLEGAL_POLLING_TIME)
        )
        raise ProxyError(
            code, "The deadline time remaining is not enough for polling, please check network condition"
        )
    return poll


class RateMeter:
    """Receive requests per second per key over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 1.0, keys_max: int = KEYS_MAX) -> None:
        self.window_s = window_s
        self.keys_max = keys_max
        self._hits: collections.OrderedDict[tuple[str, str], collections.deque[float]] = (
            collections.OrderedDict()
        )

    def hit(self, key: tuple[str, str], now: float) -> float:
        """Count one request now; return the key's rate including it."""
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = collections.deque()
            while len(self._hits) > self.keys_max:
                self._hits.popitem(last=False)
        self._hits.move_to_end(key)
        hits.append(now)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return len(hits) / self.window_s


class FalseEmptyTracker:
    """Counts empty answers that were false: a later delivery of a first-time message of the same (group,
    topic) that was stored before the empty answer was given proves a message was waiting."""

    def __init__(self, keys_max: int = KEYS_MAX) -> None:
        self.keys_max = keys_max
        self._last_empty: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()

    def empty(self, key: tuple[str, str], now_ms: int) -> None:
        self._last_empty[key] = now_ms
        self._last_empty.move_to_end(key)
        while len(self._last_empty) > self.keys_max:
            self._last_empty.popitem(last=False)

    def delivered(self, key: tuple[str, str], first_time_store_timestamps: Sequence[int]) -> bool:
        """True (once per empty answer) when one of the delivered messages was waiting at that answer."""
        at = self._last_empty.get(key)
        if at is None or not first_time_store_timestamps:
            return False
        if min(first_time_store_timestamps) < at - FALSE_EMPTY_SLACK_MS:
            del self._last_empty[key]
            return True
        return False


class PopOps(Protocol):
    """Pop and notify for one (group, topic, filter) on a named broker."""

    async def pop(self, broker: str, poll_ms: int, timeout_s: float) -> PopResult: ...

    async def notify(self, broker: str, poll_ms: int, timeout_s: float) -> NotificationResponseHeader: ...


@dataclass(frozen=True, slots=True)
class PollPlan:
    brokers: tuple[str, ...]  # brokers of the topic with readable queues
    preferred: str | None  # the broker named in the request (plain long polling starts there)
    deadline: float  # clock.monotonic() by which the answer must be ready
    long_polling: bool  # poll time > 0


class LongPoller:
    def __init__(self, config: ProxyConfig, clock: Clock, counters: ProxyCounters) -> None:
        self.config, self.clock, self.counters = config, clock, counters
        self.rates = RateMeter()
        self._next: dict[tuple[str, str], int] = {}

    def _left_ms(self, deadline: float) -> int:
        return int((deadline - self.clock.monotonic()) * 1000)

    def _timeout(self, deadline: float) -> float:
        return max(0.05, deadline - self.clock.monotonic())

    def _rotate(self, key: tuple[str, str], brokers: Sequence[str], preferred: str | None) -> str:
        if preferred in brokers:
            return preferred  # type: ignore[return-value]
        i = self._next.get(key, 0)
        self._next[key] = i + 1
        if len(self._next) > KEYS_MAX:
            self._next.pop(next(iter(self._next)))
        return brokers[i % len(brokers)]

    def use_notify(self, key: tuple[str, str], brokers: int) -> bool:
        """The adaptive switch: pop-with-notify unless this key's recent receive rate covers every broker."""
        rate = self.rates.hit(key, self.clock.monotonic())
        threshold = self.config.grpc_client_consumer_pop_with_notify_threshold
        return brokers > 1 and rate < threshold * brokers

    async def receive(self, ops: PopOps, key: tuple[str, str], plan: PollPlan) -> PopResult:
        """Messages for one client receive, or an empty result once the poll time is used up."""
        if not plan.brokers:
            return PopResult(PopStatus.NO_NEW_MSG)
        notify = self.use_notify(key, len(plan.brokers))
        first = self._rotate(key, plan.brokers, plan.preferred if not notify else None)
        if not plan.long_polling:
            return await ops.pop(first, 0, self._timeout(plan.deadline))
        self.counters.long_polls += 1
        if not notify:
            self.counters.plain_long_polls += 1
            return await self._plain(ops, first, plan)
        result = await ops.pop(first, 0, self._timeout(plan.deadline))
        if result.status is PopStatus.FOUND:
            self.counters.short_polling_hits += 1
            return result
        self.counters.pop_with_notify += 1
        return await self._notify_and_pop(ops, plan)

    def _early(self, deadline: float) -> bool:
        """An answer that leaves this much time was not a held poll running out (the broker could not
        hold it: polling full, or no long polling there)."""
        return self._left_ms(deadline) > BROKER_ANSWER_MARGIN_MS + _EARLY_SLACK_MS

    async def _plain(self, ops: PopOps, broker: str, plan: PollPlan) -> PopResult:
        """One broker's long-poll pop; answered early, it is asked again after a growing pause."""
        backoff = _BACKOFF_MIN_S
        while True:
            result = await ops.pop(broker, max(0, self._left_ms(plan.deadline)), self._timeout(plan.deadline))
            if result.status is PopStatus.FOUND or not self._early(plan.deadline):
                return result
            await self.clock.sleep(min(backoff, plan.deadline - self.clock.monotonic()))
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _notify_and_pop(self, ops: PopOps, plan: PollPlan) -> PopResult:
        branches = _Branches(self, ops, plan)
        try:
            for broker in plan.brokers:
                branches.arm(broker)
            while branches.pending:
                left = plan.deadline - self.clock.monotonic()
                if left <= 0:
                    break
                done, _ = await asyncio.wait(
                    branches.pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    break
                for task in done:
                    found = await branches.answered(task)
                    if found is not None:
                        return found
            return PopResult(PopStatus.NO_NEW_MSG)
        finally:
            await branches.cancel()


class _Branches:
    """The notification branches of one pop-with-notify request: one per broker, re-armed until the
    deadline; at most one pop runs at a time (they run inline in the request's own task)."""

    def __init__(self, poller: LongPoller, ops: PopOps, plan: PollPlan) -> None:
        self.poller, self.ops, self.plan = poller, ops, plan
        self.pending: dict[asyncio.Task[NotificationResponseHeader], str] = {}
        self._backoff: dict[str, float] = {}

    def arm(self, broker: str, delay_s: float = 0.0) -> None:
        p = self.poller
        if p._left_ms(self.plan.deadline) < _REARM_MIN_MS + delay_s * 1000:
            return
        p.counters.notifications += 1
        task = asyncio.get_running_loop().create_task(self._notify(broker, delay_s))
        self.pending[task] = broker

    def _again_later(self, broker: str) -> None:
        """Re-arm after a growing pause: the broker answered without waiting, or failed."""
        delay = self._backoff.get(broker, _BACKOFF_MIN_S)
        self._backoff[broker] = min(delay * 2, _BACKOFF_MAX_S)
        self.arm(broker, delay)

    async def _notify(self, broker: str, delay_s: float) -> NotificationResponseHeader:
        p = self.poller
        if delay_s:
            await p.clock.sleep(delay_s)
        return await self.ops.notify(
            broker, max(0, p._left_ms(self.plan.deadline)), p._timeout(self.plan.deadline)
        )

    async def answered(self, task: asyncio.Task[NotificationResponseHeader]) -> PopResult | None:
        broker = self.pending.pop(task)
        p = self.poller
        try:
            answer = task.result()
        except (BrokerError, ClientError) as exc:
            # A broker without NOTIFICATION (or failing it) is probed by pops now and then instead.
            log.debug("notification to %s failed: %s", broker, exc)
            answer = NotificationResponseHeader(has_msg=True)
        if not answer.has_msg:
            if p._early(self.plan.deadline):
                self._again_later(broker)
            return None
        p.counters.notify_pops += 1
        result = await self.ops.pop(broker, 0, p._timeout(self.plan.deadline))
        if result.status is PopStatus.FOUND:
            return result
        p.counters.notify_pops_empty += 1  # another consumer was faster (or this was a probe): listen again
        if p._early(self.plan.deadline):
            self._again_later(broker)
        return None

    async def cancel(self) -> None:
        for task in self.pending:
            task.cancel()
        for task in self.pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
