"""The send-path transform of timed messages and the delivery transform (pure functions)."""

from __future__ import annotations

import pytest

from orbitmq.broker.timer import TIMER_TOPIC, TimerVerdict, apply_timer, normalize_precision_ms, timer_timeup
from orbitmq.protocol.record import MessageRecord, Prop, SysFlag
from orbitmq.store.api import MessageToStore

NOW = 1_700_000_000_000
MAX_SEC = 3 * 24 * 3600


def msg(props: dict[str, str], topic: str = "T", queue_id: int = 3, sys_flag: int = 0) -> MessageToStore:
    return MessageToStore(
        topic=topic, queue_id=queue_id, body=b"b", properties=dict(props), sys_flag=sys_flag
    )


@pytest.mark.parametrize(
    ("props", "deliver_ms"),
    [
        ({Prop.TIMER_DELIVER_MS: str(NOW + 5000)}, NOW + 5000),
        ({Prop.TIMER_DELAY_SEC: "7"}, NOW + 7000),
        ({Prop.TIMER_DELAY_MS: "1234"}, NOW + 1234),
        # upstream's order: DELAY_SEC, then DELAY_MS, then DELIVER_MS
        ({Prop.TIMER_DELAY_SEC: "2", Prop.TIMER_DELAY_MS: "9", Prop.TIMER_DELIVER_MS: "1"}, NOW + 2000),
        ({Prop.TIMER_DELAY_MS: "9", Prop.TIMER_DELIVER_MS: str(NOW + 1)}, NOW + 9),
    ],
)
def test_future_time_parks_in_the_timer_topic(props: dict[str, str], deliver_ms: int) -> None:
    m = msg(props)
    check = apply_timer(m, NOW, MAX_SEC)
    assert check.verdict is TimerVerdict.PARKED and check.deliver_ms == deliver_ms
    assert (m.topic, m.queue_id, m.tags_code) == (TIMER_TOPIC, 0, deliver_ms)
    assert m.properties[Prop.TIMER_OUT_MS] == str(deliver_ms)
    assert (m.properties[Prop.REAL_TOPIC], m.properties[Prop.REAL_QID]) == ("T", "3")


def test_past_or_present_time_is_stored_in_its_topic() -> None:
    for deliver in (NOW, NOW - 60_000):
        m = msg({Prop.TIMER_DELIVER_MS: str(deliver)})
        assert apply_timer(m, NOW, MAX_SEC).verdict is TimerVerdict.DUE
        assert m.topic == "T" and Prop.TIMER_OUT_MS not in m.properties


def test_beyond_the_max_delay_or_not_a_number_is_illegal_with_upstreams_remark() -> None:
    just_ok = msg({Prop.TIMER_DELAY_SEC: str(MAX_SEC)})
    assert apply_timer(just_ok, NOW, MAX_SEC).verdict is TimerVerdict.PARKED
    for props in ({Prop.TIMER_DELAY_MS: str(MAX_SEC * 1000 + 1)}, {Prop.TIMER_DELIVER_MS: "soon"}):
        m = msg(props)
        check = apply_timer(m, NOW, MAX_SEC)
        assert check.verdict is TimerVerdict.ILLEGAL
        assert check.remark.startswith("timer message illegal, the delay time should not be bigger than")
        assert f"{MAX_SEC * 1000}ms" in check.remark
        assert m.topic == "T"  # unchanged


def test_a_delay_level_wins_and_the_timer_properties_go() -> None:
    m = msg({Prop.DELAY: "2", Prop.TIMER_DELAY_SEC: "30", Prop.TIMER_DELIVER_MS: str(NOW + 1)})
    assert apply_timer(m, NOW, MAX_SEC).verdict is TimerVerdict.NOT_TIMED
    assert m.properties == {Prop.DELAY: "2"} and m.topic == "T"


def test_not_timed_cases() -> None:
    assert apply_timer(msg({}), NOW, MAX_SEC).verdict is TimerVerdict.NOT_TIMED
    # a delivered copy keeps TIMER_OUT_MS: it is never parked again
    delivered = msg({Prop.TIMER_DELIVER_MS: str(NOW + 9000), Prop.TIMER_OUT_MS: str(NOW + 9000)})
    assert apply_timer(delivered, NOW, MAX_SEC).verdict is TimerVerdict.NOT_TIMED
    prepared = msg({Prop.TIMER_DELAY_SEC: "5"}, sys_flag=SysFlag.TRANSACTION_PREPARED)
    assert apply_timer(prepared, NOW, MAX_SEC).verdict is TimerVerdict.NOT_TIMED
    committed = msg({Prop.TIMER_DELAY_SEC: "5"}, sys_flag=SysFlag.TRANSACTION_COMMIT)
    assert apply_timer(committed, NOW, MAX_SEC).verdict is TimerVerdict.PARKED


def test_disabled_wheel_and_deletion_markers_are_refused() -> None:
    check = apply_timer(msg({Prop.TIMER_DELAY_SEC: "5"}), NOW, MAX_SEC, enabled=False)
    assert check.verdict is TimerVerdict.DISABLED and "timerWheelEnable is false" in check.remark
    check = apply_timer(msg({Prop.TIMER_DELAY_SEC: "5", "TIMER_DEL_UNIQKEY": "x"}), NOW, MAX_SEC)
    assert check.verdict is TimerVerdict.ILLEGAL


def test_timeup_restores_the_real_queue_and_stamps_enqueue_and_dequeue_times() -> None:
    props = {
        Prop.TAGS: "a",
        Prop.TIMER_OUT_MS: "5",
        Prop.REAL_TOPIC: "T",
        Prop.REAL_QID: "2",
        Prop.UNIQ_KEY: "U",
    }
    rec = MessageRecord(
        topic=TIMER_TOPIC, body=b"x", properties=props, store_timestamp=111, flag=7, sys_flag=2
    )
    out = timer_timeup(rec, 222)
    assert out is not None
    assert (out.topic, out.queue_id, out.body, out.flag, out.sys_flag) == ("T", 2, b"x", 7, 2)
    assert out.properties == {Prop.TAGS: "a", Prop.TIMER_OUT_MS: "5", Prop.UNIQ_KEY: "U",
                              "TIMER_ENQUEUE_MS": "111", "TIMER_DEQUEUE_MS": "222", Prop.WAIT: "false"}  # fmt: skip
    assert timer_timeup(MessageRecord(topic=TIMER_TOPIC, body=b"", properties={}), 1) is None


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 100), (100, 100), (250, 200), (999, 500), (1000, 1000), (5000, 1000)]
)
def test_precision_is_rounded_down_to_upstreams_candidates(value: int, expected: int) -> None:
    assert normalize_precision_ms(value) == expected
