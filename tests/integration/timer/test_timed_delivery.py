"""Timed messages over SEND_MESSAGE_V2, on a FakeClock: delivered not before their time and within the
precision after it, refused beyond timerMaxDelaySec, and exactly once across broker restarts before and
after the delivery time."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from orbitmq.broker.timer import TIMER_TOPIC
from orbitmq.core.clock import FakeClock
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.record import MessageRecord, Prop, encode_batch_body

from .conftest import Cluster, until

MakeCluster = Callable[..., Awaitable[Cluster]]

#: The timer loop sleeps at least 10 ms when nothing is due, so deliveries due close together share a batch:
#: a message may go out up to this much after its time (never before).
BATCH_WINDOW_S = 0.010


async def delivered(c: Cluster, topic: str, queue_id: int = 0) -> list[MessageRecord]:
    response, records = await c.pull(topic, queue_id, 0, suspend_ms=0, sys_flag=4)
    return records if response.code == ResponseCode.SUCCESS else []


async def wait_delivered(c: Cluster, topic: str, count: int, queue_id: int = 0) -> list[MessageRecord]:
    await until(lambda: c.b.store.max_offset_in_queue(topic, queue_id) >= count)
    records = await delivered(c, topic, queue_id)
    assert len(records) == count
    return records


async def test_delivered_not_before_its_time_and_within_the_precision(make_cluster: MakeCluster) -> None:
    clock = FakeClock()
    c = await make_cluster(clock)
    t0 = clock.now_ms()
    r = await c.send("Timed", b"at-5s", props={Prop.TIMER_DELIVER_MS: str(t0 + 5_000)})
    assert r.code == ResponseCode.SUCCESS
    r = await c.send("Timed", b"in-2.5s", props={Prop.TIMER_DELAY_MS: "2500"})
    assert r.code == ResponseCode.SUCCESS
    await until(lambda: c.b.timer is not None and c.b.timer.pending == 2)
    assert c.b.store.max_offset_in_queue(TIMER_TOPIC, 0) == 2
    assert c.b.store.max_offset_in_queue("Timed", 0) == 0

    await clock.advance(2.499)
    assert c.b.store.max_offset_in_queue("Timed", 0) == 0  # 1 ms early: not yet
    # past the due time by more than the timer's 10 ms batching window (its loop may sleep that long)
    await clock.advance(0.002 + BATCH_WINDOW_S)
    [first] = await wait_delivered(c, "Timed", 1)
    assert first.body == b"in-2.5s" and first.store_timestamp - (t0 + 2500) < 1000

    await clock.advance((t0 + 4_998 - clock.now_ms()) / 1000)  # now t0 + 4.998 s
    assert c.b.store.max_offset_in_queue("Timed", 0) == 1
    await clock.advance(0.004 + BATCH_WINDOW_S)
    records = await wait_delivered(c, "Timed", 2)
    second = records[1]
    assert second.body == b"at-5s" and 0 <= second.store_timestamp - (t0 + 5000) < 1000
    props = second.properties
    assert props[Prop.TIMER_OUT_MS] == str(t0 + 5000) and props["TIMER_DEQUEUE_MS"] == str(
        second.store_timestamp
    )
    assert Prop.REAL_TOPIC not in props and Prop.REAL_QID not in props and "TIMER_ENQUEUE_MS" in props
    assert c.b.timer is not None and c.b.timer.pending == 0 and c.b.timer.stats.delivered == 2


async def test_send_path_rules(make_cluster: MakeCluster) -> None:
    clock = FakeClock()
    c = await make_cluster(clock)
    now = clock.now_ms()
    # past time: stored in its topic at once, properties kept
    assert (await c.send("Rules", b"past", props={Prop.TIMER_DELIVER_MS: str(now - 1)})).code == 0
    assert c.b.store.max_offset_in_queue("Rules", 0) == 1
    # beyond timerMaxDelaySec (3 days): MESSAGE_ILLEGAL with upstream's remark
    r = await c.send("Rules", b"far", props={Prop.TIMER_DELAY_SEC: str(3 * 24 * 3600 + 1)})
    assert r.code == ResponseCode.MESSAGE_ILLEGAL and "max delay 259200000ms" in (r.remark or "")
    r = await c.send("Rules", b"nan", props={Prop.TIMER_DELIVER_MS: "tomorrow"})
    assert r.code == ResponseCode.MESSAGE_ILLEGAL
    # a delay level wins over the timer properties (upstream), so it goes to SCHEDULE_TOPIC_XXXX
    assert (await c.send("Rules", b"lvl", props={Prop.DELAY: "1", Prop.TIMER_DELAY_SEC: "60"})).code == 0
    assert c.b.store.max_offset_in_queue("SCHEDULE_TOPIC_XXXX", 0) == 1
    assert c.b.store.max_offset_in_queue(TIMER_TOPIC, 0) == 0
    # batches cannot carry a delivery time
    body = encode_batch_body([(0, b"x", {Prop.TIMER_DELAY_SEC: "5"})])
    r = await c.send("Rules", body, code=RequestCode.SEND_BATCH_MESSAGE, batch=True)
    assert r.code == ResponseCode.MESSAGE_ILLEGAL


async def test_timer_wheel_disabled_refuses_timed_messages(make_cluster: MakeCluster) -> None:
    c = await make_cluster(timer_wheel_enable=False)
    r = await c.send("Off", b"x", props={Prop.TIMER_DELAY_SEC: "5"})
    assert r.code == ResponseCode.SYSTEM_ERROR and "timerWheelEnable is false" in (r.remark or "")
    assert (await c.send("Off", b"plain")).code == ResponseCode.SUCCESS


async def test_restart_before_the_delivery_time(make_cluster: MakeCluster) -> None:
    clock = FakeClock()
    c = await make_cluster(clock)
    assert (await c.send("Kept", b"early", props={Prop.TIMER_DELAY_SEC: "1"})).code == 0
    assert (await c.send("Kept", b"late", props={Prop.TIMER_DELAY_SEC: "10"})).code == 0
    await clock.advance(1)
    await wait_delivered(c, "Kept", 1)

    await c.restart_broker()

    assert c.b.timer is not None and c.b.timer.pending == 1 and c.b.timer.stats.rebuilt == 1
    await clock.advance(8.9)
    assert c.b.store.max_offset_in_queue("Kept", 0) == 1
    await clock.advance(0.1)
    records = await wait_delivered(c, "Kept", 2)
    assert [m.body for m in records] == [b"early", b"late"]
    await clock.advance(30)
    assert c.b.store.max_offset_in_queue("Kept", 0) == 2  # each exactly once


async def test_broker_down_across_the_delivery_time(make_cluster: MakeCluster) -> None:
    clock = FakeClock()
    c = await make_cluster(clock)
    assert (await c.send("Down", b"d", props={Prop.TIMER_DELAY_SEC: "5"})).code == 0
    port = c.b.port
    await c.b.stop()
    await clock.advance(60)  # the delivery time passes while the broker is down
    await c.start_broker(port)
    records = await wait_delivered(c, "Down", 1)
    assert records[0].body == b"d"
    await c.restart_broker()
    await clock.advance(10)
    assert c.b.store.max_offset_in_queue("Down", 0) == 1
    assert c.b.timer is not None and c.b.timer.stats.rebuilt == 0


async def test_stale_marker_after_a_crash_does_not_repeat_deliveries(make_cluster: MakeCluster) -> None:
    """A crash loses the deliveries made after the last marker: they are found in the key index instead."""
    clock = FakeClock()
    c = await make_cluster(clock)
    marker = Path(c.store_config.store_path_root_dir) / "config" / "timerCheckpoint.json"
    for i in range(3):
        assert (await c.send("Crash", f"m{i}".encode(), props={Prop.TIMER_DELAY_SEC: str(2 + i)})).code == 0
    timer = c.b.timer
    assert timer is not None
    await until(lambda: timer.pending == 3)
    await timer.persist()  # what the periodic marker held before the deliveries
    stale = marker.read_bytes()
    await clock.advance(3)
    await wait_delivered(c, "Crash", 2)
    port = c.b.port
    await c.b.stop()
    marker.write_bytes(stale)  # as if the broker died before writing a newer marker
    shutil.copy(marker, str(marker) + ".bak")

    await c.start_broker(port)

    timer = c.b.timer
    assert timer is not None
    await until(lambda: timer.stats.rebuilt == 3)
    await clock.advance(0.01)
    await until(lambda: timer.stats.duplicates_skipped == 2)
    assert c.b.store.max_offset_in_queue("Crash", 0) == 2
    await clock.advance(2)
    records = await wait_delivered(c, "Crash", 3)
    assert [m.body for m in records] == [b"m0", b"m1", b"m2"]
