"""``orbitmq bench timer``: scheduling and delivering timed messages, and how late they arrive.

One process, a FileMessageStore in a temp dir (ASYNC_FLUSH) and the broker's TimerMessageService, no network
(the send path's cost is ``orbitmq bench produce``'s). Measured in the same run:

- **schedule**: ``count`` messages (100-byte bodies, 8 queues) parked through :func:`apply_timer` and
  ``put_messages`` in batches of 256, delivery times spread uniformly over ``spread`` seconds and put in an
  order unrelated to their times. Baseline: the same messages put into their topic directly.
- **deliver**: each delivered copy's lateness = its store time - its requested time (ms), from the store's
  dispatch listener, as p50 / p99 / max, with the delivery rate during the spread. The spread starts once
  scheduling is expected to be done (a warm-up measures the put rate); messages whose time had passed
  before they were put are counted as ``stored_directly`` and left out of the lateness.
- **baseline delivery**: delay level 1 (1 s, RocketMQ's ScheduleMessageService) for ``min(count, 100k)``
  messages put as fast as possible: lateness = store time - (parked store time + 1 s).
"""

from __future__ import annotations

import asyncio
import random
import resource
import tempfile
import time
from typing import Any

from orbitmq.broker.schedule import DelayOffsetManager, ScheduleMessageService, apply_delay_level
from orbitmq.broker.timer import TimerCheckpointManager, TimerMessageService, TimerVerdict, apply_timer
from orbitmq.cli.bench.common import machine, percentile, rate, timer
from orbitmq.core.clock import RealClock
from orbitmq.protocol.record import Prop
from orbitmq.store import FileMessageStore, MessageToStore, StoreConfig
from orbitmq.store.api import DispatchRequest

__all__ = ["run_timer_bench"]

TOPIC = "BenchTimer"
QUEUES = 8
BATCH = 256
BODY = b"x" * 100
_DELAY_BASELINE_MAX = 100_000


def _store(root: str) -> FileMessageStore:
    return FileMessageStore(
        StoreConfig(store_path_root_dir=root, mapped_file_size_commit_log=256 * 1024 * 1024)
    )


def _message(i: int, props: dict[str, str]) -> MessageToStore:
    return MessageToStore(topic=TOPIC, queue_id=i % QUEUES, body=BODY, properties=props)


async def _put_all(store: FileMessageStore, msgs: list[MessageToStore]) -> float:
    """Put ``msgs`` in batches of one queue each; the elapsed seconds."""
    by_key: dict[tuple[str, int], list[MessageToStore]] = {}
    start = timer()
    for m in msgs:
        batch = by_key.setdefault((m.topic, m.queue_id), [])
        batch.append(m)
        if len(batch) == BATCH:
            await store.put_messages(batch)
            by_key[(m.topic, m.queue_id)] = []
    for batch in by_key.values():
        if batch:
            await store.put_messages(batch)
    return timer() - start


async def plain_put_rate(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orbitmq-bench-timer-") as root:
        store = _store(root)
        await store.start()
        try:
            msgs = [_message(i, {Prop.UNIQ_KEY: f"P{i}"}) for i in range(count)]
            elapsed = await _put_all(store, msgs)
        finally:
            await store.stop()
    return {"messages": count, "msgs_per_s": round(rate(count, elapsed))}


def _lateness(samples: list[int]) -> dict[str, Any]:
    return {
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "max_ms": max(samples, default=0),
        "early": sum(1 for s in samples if s < 0),
    }


async def timed_delivery(count: int, spread_s: float, plain_rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orbitmq-bench-timer-") as root:
        clock = RealClock()
        store = _store(root)
        await store.start()
        service = TimerMessageService(store, TimerCheckpointManager(root, clock), clock)
        lateness: list[int] = []
        delivered_at: list[float] = []

        def on_dispatch(req: DispatchRequest) -> None:
            service.on_dispatch(req)
            if req.topic == TOPIC and Prop.TIMER_OUT_MS in req.properties:
                lateness.append(req.store_timestamp - int(req.properties[Prop.TIMER_OUT_MS]))
                delivered_at.append(timer())

        store.add_dispatch_listener(on_dispatch)
        await service.start()
        try:
            # The spread starts when scheduling should be over: the plain put rate, halved for the
            # timer's own work, plus two seconds.
            base = clock.now_ms() + int((count / max(plain_rate, 1.0) * 2 + 2) * 1000)
            spread_ms = max(1, int(spread_s * 1000))
            rnd = random.Random(7)  # times in no relation to the put order, the same in every run
            now = clock.now_ms()
            msgs: list[MessageToStore] = []
            direct = 0
            for i in range(count):
                due = base + rnd.randrange(spread_ms)
                m = _message(i, {Prop.TIMER_DELIVER_MS: str(due), Prop.UNIQ_KEY: f"T{i}"})
                if apply_timer(m, now, 3 * 24 * 3600).verdict is not TimerVerdict.PARKED:
                    direct += 1
                msgs.append(m)
            elapsed = await _put_all(store, msgs)
            del msgs  # the bench's own copies: what stays in memory is the timer's index
            scheduled_by = clock.now_ms()
            peak_pending = service.pending
            index_bytes = service.index.memory_bytes()
            deadline = timer() + spread_s + (base - scheduled_by) / 1000 + 120
            while service.stats.delivered < count - direct and timer() < deadline:
                await asyncio.sleep(0.05)
            window = (delivered_at[-1] - delivered_at[0]) if len(delivered_at) > 1 else 0.0
            return {
                "messages": count,
                "spread_s": spread_s,
                "schedule_msgs_per_s": round(rate(count, elapsed)),
                "scheduling_done_before_spread_ms": base - scheduled_by,
                "stored_directly": direct,
                "peak_pending": peak_pending,
                "index_mib_at_peak": round(index_bytes / 2**20, 1),
                "index_bytes_per_pending": round(index_bytes / max(peak_pending, 1), 1),
                "delivered": service.stats.delivered,
                "deliver_msgs_per_s": round(rate(len(delivered_at), window)) if window else None,
                "lateness": _lateness(lateness),
            }
        finally:
            await service.stop()
            await store.stop()


async def delay_level_delivery(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orbitmq-bench-timer-") as root:
        clock = RealClock()
        store = _store(root)
        await store.start()
        levels = (1000,)
        service = ScheduleMessageService(store, DelayOffsetManager(root, clock), levels, clock)
        lateness: list[int] = []
        parked_at: dict[str, int] = {}

        def on_dispatch(req: DispatchRequest) -> None:
            service.on_message_arriving(req.topic)
            uniq = req.properties.get(Prop.UNIQ_KEY, "")
            if req.topic == TOPIC:
                lateness.append(req.store_timestamp - (parked_at.get(uniq, req.store_timestamp) + 1000))
            else:
                parked_at[uniq] = req.store_timestamp

        store.add_dispatch_listener(on_dispatch)
        await service.start()
        try:
            msgs = []
            for i in range(count):
                m = _message(i, {Prop.DELAY: "1", Prop.UNIQ_KEY: f"D{i}"})
                apply_delay_level(m, levels, clock.now_ms())
                msgs.append(m)
            elapsed = await _put_all(store, msgs)
            deadline = timer() + 120
            while service.delivered < count and timer() < deadline:
                await asyncio.sleep(0.05)
            return {
                "messages": count,
                "schedule_msgs_per_s": round(rate(count, elapsed)),
                "delivered": service.delivered,
                "lateness": _lateness(lateness),
            }
        finally:
            await service.stop()
            await store.stop()


async def _main(count: int, spread_s: float) -> dict[str, Any]:
    started = time.monotonic()
    plain = await plain_put_rate(count)
    timed = await timed_delivery(count, spread_s, plain["msgs_per_s"])
    delay = await delay_level_delivery(min(count, _DELAY_BASELINE_MAX))
    return {
        "workload": "timer",
        "machine": machine(),
        "plain_put": plain,
        "timer": timed,
        "delay_level_1s": delay,
        "ratios": {
            "schedule_vs_plain_put": round(timed["schedule_msgs_per_s"] / plain["msgs_per_s"], 3)
            if plain["msgs_per_s"]
            else None,
            "timer_p99_vs_delay_level_p99": round(
                timed["lateness"]["p99_ms"] / max(delay["lateness"]["p99_ms"], 1), 3
            ),
        },
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "wall_s": round(time.monotonic() - started, 1),
    }


def run_timer_bench(count: int = 1_000_000, spread_s: float = 60.0, quick: bool = False) -> dict[str, Any]:
    if quick:
        count, spread_s = min(count, 20_000), min(spread_s, 3.0)
    return asyncio.run(_main(count, spread_s))
