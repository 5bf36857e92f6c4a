"""Poll-time rules, the adaptive switch, the false-empty detector and pop-with-notify over fake brokers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

from orbitmq.client.pop import PopResult, PopStatus
from orbitmq.core.clock import RealClock
from orbitmq.protocol.pop import NotificationResponseHeader
from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.counters import ProxyCounters
from orbitmq.proxy.longpoll import FalseEmptyTracker, LongPoller, PollPlan, RateMeter, polling_time_ms
from orbitmq.proxy.status import Code, ProxyError

CFG = ProxyConfig()


# -- poll time -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "remaining", "expected"),
    [
        (20_000, 23_000, 20_000),  # Python simple consumer with await 20 s: as asked
        (30_000, 33_000, 20_000),  # Node's default 30 s: capped at the maximum
        (1_000, 8_000, 5_000),  # raised to the minimum
        (20_000, 12_000, 11_900),  # more than the deadline allows: what is left, minus the reserve
        (None, 23_000, 20_000),  # no long polling timeout: remaining - request timeout / 2, then capped
        (None, 8_000, 6_500),
    ],
)
def test_polling_time_follows_the_java_rules(requested: int | None, remaining: int, expected: int) -> None:
    assert polling_time_ms(requested, remaining, 3000, CFG, "5.1.2") == expected


def test_too_little_time_is_illegal_polling_time_or_bad_request_for_old_clients() -> None:
    with pytest.raises(ProxyError) as new:
        polling_time_ms(20_000, 4_000, 3000, CFG, "5.1.2")
    assert new.value.code == Code.ILLEGAL_POLLING_TIME
    with pytest.raises(ProxyError) as old:
        polling_time_ms(20_000, 4_000, 3000, CFG, "5.0.2")
    assert old.value.code == Code.BAD_REQUEST


def test_min_and_max_are_config_keys() -> None:
    cfg = dataclasses.replace(
        CFG,
        grpc_client_consumer_min_long_polling_timeout_millis=1000,
        grpc_client_consumer_max_long_polling_timeout_millis=2000,
    )
    assert polling_time_ms(500, 10_000, 3000, cfg, "") == 1000
    assert polling_time_ms(9_000, 10_000, 3000, cfg, "") == 2000


# -- rate and false empties ------------------------------------------------------------------------------
def test_rate_meter_counts_the_last_window_per_key() -> None:
    meter = RateMeter(window_s=1.0)
    assert meter.hit(("g", "t"), 10.0) == 1
    assert meter.hit(("g", "t"), 10.5) == 2
    assert meter.hit(("g", "other"), 10.5) == 1
    assert meter.hit(("g", "t"), 11.2) == 2  # 10.0 fell out of the window


def test_false_empty_is_a_delivery_of_a_message_older_than_an_empty_answer() -> None:
    t = FalseEmptyTracker()
    key = ("g", "t")
    t.empty(key, 10_000)
    assert not t.delivered(key, [9_900])  # stored just before the answer: a race, not a false empty
    assert not t.delivered(key, [10_500])  # arrived after the answer: the answer was right
    assert t.delivered(key, [5_000])  # was waiting while we said "nothing"
    assert not t.delivered(key, [5_000])  # counted once per empty answer


# -- pop-with-notify over fake brokers -------------------------------------------------------------------
class FakeBrokers:
    """Brokers holding messages; notify waits until the broker has one (or the poll time ends)."""

    def __init__(self, *names: str) -> None:
        self.msgs: dict[str, list[str]] = {n: [] for n in names}
        self.arrived = {n: asyncio.Event() for n in names}
        self.pops: list[tuple[str, int]] = []
        self.notifies: list[str] = []
        self.cancelled_notifies = 0
        self.steal_next: set[str] = set()

    def put(self, broker: str, msg: str) -> None:
        self.msgs[broker].append(msg)
        self.arrived[broker].set()

    async def pop(self, broker: str, poll_ms: int, timeout_s: float) -> PopResult:
        self.pops.append((broker, poll_ms))
        if poll_ms and not self.msgs[broker]:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived[broker].wait(), poll_ms / 1000)
        if broker in self.steal_next:  # another consumer was faster
            self.steal_next.discard(broker)
            self.msgs[broker].clear()
            self.arrived[broker].clear()
        if not self.msgs[broker]:
            return PopResult(PopStatus.NO_NEW_MSG)
        got, self.msgs[broker] = self.msgs[broker], []
        self.arrived[broker].clear()
        return PopResult(PopStatus.FOUND, tuple(got))  # type: ignore[arg-type]

    async def notify(self, broker: str, poll_ms: int, timeout_s: float) -> NotificationResponseHeader:
        self.notifies.append(broker)
        try:
            await asyncio.wait_for(self.arrived[broker].wait(), poll_ms / 1000)
        except TimeoutError:
            return NotificationResponseHeader(False)
        except asyncio.CancelledError:
            self.cancelled_notifies += 1
            raise
        return NotificationResponseHeader(True)


def poller(threshold: float = 50.0) -> tuple[LongPoller, ProxyCounters]:
    counters = ProxyCounters()
    cfg = dataclasses.replace(CFG, grpc_client_consumer_pop_with_notify_threshold=threshold)
    return LongPoller(cfg, RealClock(), counters), counters


def plan(brokers: tuple[str, ...], seconds: float) -> PollPlan:
    return PollPlan(brokers, None, asyncio.get_running_loop().time() + seconds, True)


async def test_a_message_on_the_other_broker_ends_the_poll_at_once() -> None:
    p, counters = poller()
    brokers = FakeBrokers("a", "b")
    task = asyncio.create_task(p.receive(brokers, ("g", "t"), plan(("a", "b"), 5.0)))
    await asyncio.sleep(0.05)
    assert not task.done() and set(brokers.notifies) == {"a", "b"}
    started = asyncio.get_running_loop().time()
    brokers.put("b", "m1")
    result = await asyncio.wait_for(task, 1.0)
    assert result.status is PopStatus.FOUND and list(result.messages) == ["m1"]
    assert asyncio.get_running_loop().time() - started < 1.0
    assert counters.pop_with_notify == 1 and counters.long_polls == 1 and counters.short_polling_hits == 0
    assert brokers.cancelled_notifies == 1  # broker a's notification is withdrawn


async def test_a_waiting_message_is_a_short_polling_hit() -> None:
    p, counters = poller()
    brokers = FakeBrokers("a", "b")
    brokers.put("a", "m0")
    brokers.put("b", "m0b")
    result = await p.receive(brokers, ("g", "t"), plan(("a", "b"), 5.0))
    assert result.status is PopStatus.FOUND and counters.short_polling_hits == 1 and not brokers.notifies


async def test_an_empty_pop_after_a_notification_re_arms_it() -> None:
    p, counters = poller()
    brokers = FakeBrokers("a", "b")
    task = asyncio.create_task(p.receive(brokers, ("g", "t"), plan(("a", "b"), 5.0)))
    await asyncio.sleep(0.05)
    brokers.steal_next.add("a")
    brokers.put("a", "stolen")
    await asyncio.sleep(0.05)
    assert not task.done() and counters.notify_pops_empty == 1
    brokers.put("a", "mine")
    result = await asyncio.wait_for(task, 1.0)
    assert list(result.messages) == ["mine"] and brokers.notifies.count("a") == 2


async def test_nothing_arrives_the_answer_is_empty_when_time_is_up() -> None:
    p, counters = poller()
    brokers = FakeBrokers("a", "b")
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await p.receive(brokers, ("g", "t"), plan(("a", "b"), 0.3))
    elapsed = loop.time() - started
    assert result.status is PopStatus.NO_NEW_MSG and 0.25 <= elapsed < 1.0
    assert counters.pop_with_notify == 1


async def test_above_the_threshold_a_long_poll_is_a_plain_pop_on_one_broker() -> None:
    p, counters = poller(threshold=0.0)
    brokers = FakeBrokers("a", "b")
    result = await p.receive(brokers, ("g", "t"), plan(("a", "b"), 0.2))
    assert result.status is PopStatus.NO_NEW_MSG and counters.plain_long_polls == 1 and not brokers.notifies
    assert len(brokers.pops) == 1 and brokers.pops[0][1] > 0  # one broker, with a poll time
    await p.receive(brokers, ("g", "t"), plan(("a", "b"), 0.1))
    assert {b for b, _ in brokers.pops} == {"a", "b"}  # round robin between requests


async def test_one_broker_needs_no_notifications() -> None:
    p, counters = poller()
    brokers = FakeBrokers("a")
    task = asyncio.create_task(p.receive(brokers, ("g", "t"), plan(("a",), 5.0)))
    await asyncio.sleep(0.05)
    brokers.put("a", "m")
    result = await asyncio.wait_for(task, 1.0)
    assert list(result.messages) == ["m"] and counters.plain_long_polls == 1 and not brokers.notifies


class ImpatientBrokers(FakeBrokers):
    """Brokers that cannot hold a request: pops and notifications answer at once (or NOTIFICATION is
    not served at all)."""

    def __init__(self, *names: str, notification: bool = True) -> None:
        super().__init__(*names)
        self.notification = notification

    async def pop(self, broker: str, poll_ms: int, timeout_s: float) -> PopResult:
        return await super().pop(broker, 0, timeout_s)

    async def notify(self, broker: str, poll_ms: int, timeout_s: float) -> NotificationResponseHeader:
        self.notifies.append(broker)
        if not self.notification:
            from orbitmq.core.errors import BrokerError

            raise BrokerError(3, "request type 200054 not supported")
        return NotificationResponseHeader(bool(self.msgs[broker]))


@pytest.mark.parametrize("notification", [True, False])
async def test_brokers_that_cannot_wait_are_asked_again_until_the_deadline(notification: bool) -> None:
    p, _ = poller()
    brokers = ImpatientBrokers("a", "b", notification=notification)
    task = asyncio.create_task(p.receive(brokers, ("g", "t"), plan(("a", "b"), 5.0)))
    await asyncio.sleep(0.3)
    assert not task.done()  # neither an immediate empty answer nor a busy loop
    asked = len(brokers.notifies)
    assert 2 <= asked < 40
    brokers.put("b", "m")
    result = await asyncio.wait_for(task, 2.0)
    assert list(result.messages) == ["m"]


async def test_a_plain_long_poll_answered_early_is_repeated() -> None:
    p, _ = poller(threshold=0.0)
    brokers = ImpatientBrokers("a", "b")
    task = asyncio.create_task(
        p.receive(brokers, ("g", "t"), PollPlan(("a", "b"), "a", asyncio.get_running_loop().time() + 5, True))
    )
    await asyncio.sleep(0.3)
    assert not task.done() and 2 <= len(brokers.pops) < 20
    brokers.put("a", "m")
    assert list((await asyncio.wait_for(task, 2.0)).messages) == ["m"]


def test_the_switch_turns_to_plain_polling_once_polls_cover_every_broker() -> None:
    class Clock:
        now = 100.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    cfg = dataclasses.replace(CFG, grpc_client_consumer_pop_with_notify_threshold=2.0)
    p = LongPoller(cfg, clock, ProxyCounters())  # type: ignore[arg-type]
    key = ("g", "t")
    decisions = []
    for _ in range(6):  # six receives within one second: 2 per second per broker is reached at the 4th
        clock.now += 0.1
        decisions.append(p.use_notify(key, brokers=2))
    assert decisions == [True, True, True, False, False, False]
    clock.now += 5.0  # quiet again: back to pop-with-notify
    assert p.use_notify(key, brokers=2)
    assert not p.use_notify(("g", "one-broker"), brokers=1)  # one broker: a plain long poll covers it
