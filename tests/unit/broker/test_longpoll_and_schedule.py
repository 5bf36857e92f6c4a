"""The long-poll table and the delay-level delivery service on a FakeClock and the in-memory store; the pure
decisions of the pull, offset, send-back and admin handlers."""

from __future__ import annotations

import asyncio

import pytest

from orbitmq.broker.handlers.admin import mq_keyed_json, properties_text
from orbitmq.broker.handlers.offsets import search_offset
from orbitmq.broker.handlers.pull import pull_response_code
from orbitmq.broker.handlers.send import SendHeader, put_status_response
from orbitmq.broker.handlers.sendback import retry_copy
from orbitmq.broker.locks import MessageQueue
from orbitmq.broker.longpoll import HOLD_MS_MAX, PullRequestHoldService, WakeReason
from orbitmq.broker.schedule import (
    SCHEDULE_TOPIC,
    DelayOffsetManager,
    ScheduleMessageService,
    apply_delay_level,
    message_timeup,
)
from orbitmq.core.clock import FakeClock
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import MessageRecord, SysFlag, decode_record
from orbitmq.store import MemoryMessageStore, MessageToStore, StoreConfig
from orbitmq.store.api import DispatchRequest, GetStatus, PutResult, PutStatus

LEVELS = (1000, 5000, 10_000)


def arrived(
    topic: str = "T", qid: int = 0, offset: int = 0, code: int = 0, tags: str | None = None
) -> DispatchRequest:
    props = {"TAGS": tags} if tags else {}
    return DispatchRequest(topic, qid, offset, 0, 100, code, 0, 0, props)


# -- long polling ------------------------------------------------------------------------------------------
@pytest.fixture
async def holds() -> PullRequestHoldService:
    svc = PullRequestHoldService(FakeClock(), max_requests=3)
    await svc.start()
    yield svc  # type: ignore[misc]
    await svc.stop()


async def test_a_matching_record_wakes_only_its_queue_and_offset(holds: PullRequestHoldService) -> None:
    fut = holds.hold("T", 1, 5, 15_000, conn_id=1, tag_filter={7}.__contains__)
    assert fut is not None
    assert holds.notify_message_arriving(arrived("T", 0, 9, 7)) == 0  # other queue
    assert holds.notify_message_arriving(arrived("T", 1, 4, 7)) == 0  # before the pulled offset
    assert holds.notify_message_arriving(arrived("T", 1, 5, 8)) == 0  # tag filtered out
    assert not fut.done()
    assert holds.notify_message_arriving(arrived("T", 1, 5, 7)) == 1
    assert await fut == WakeReason.MESSAGE
    await asyncio.sleep(0)
    assert holds.held_count == 0


async def test_record_filter_sees_the_properties(holds: PullRequestHoldService) -> None:
    fut = holds.hold("T", 0, 0, 15_000, 1, record_filter=lambda p: p.get("TAGS") == "A")
    assert fut is not None
    assert holds.notify_message_arriving(arrived(tags="B")) == 0
    assert holds.notify_message_arriving(arrived(tags="A")) == 1


async def test_deadline_and_cap() -> None:
    clock = FakeClock()
    svc = PullRequestHoldService(clock)
    await svc.start()
    try:
        short = svc.hold("T", 0, 0, 300, 1)
        huge = svc.hold("T", 0, 0, 10 * 60_000, 1)  # a client asking 10 minutes gets HOLD_MS_MAX
        assert short is not None and huge is not None
        await clock.advance(0.2)
        assert not short.done()
        await clock.advance(0.2)
        assert await asyncio.wait_for(short, 1) == WakeReason.TIMEOUT
        await clock.advance(HOLD_MS_MAX / 1000 - 1)
        assert not huge.done()
        await clock.advance(1.5)
        assert await asyncio.wait_for(huge, 1) == WakeReason.TIMEOUT
    finally:
        await svc.stop()


async def test_bounded_table_connection_close_and_stop(holds: PullRequestHoldService) -> None:
    futs = [holds.hold("T", q, 0, 15_000, conn_id=q % 2) for q in range(3)]
    assert all(f is not None for f in futs)
    assert holds.hold("T", 9, 0, 15_000, 1) is None and holds.refused == 1
    assert holds.drop_connection(0) == 2  # queues 0 and 2 came over connection 0
    await holds.stop()
    assert [await f for f in futs if f is not None] == [
        WakeReason.CLOSED,
        WakeReason.SHUTDOWN,
        WakeReason.CLOSED,
    ]
    assert holds.hold("T", 0, 0, 1000, 1) is None  # a stopped table holds nothing


# -- delay levels ------------------------------------------------------------------------------------------
def msg(topic: str = "Real", props: dict[str, str] | None = None, sys_flag: int = 0) -> MessageToStore:
    return MessageToStore(topic=topic, queue_id=3, body=b"b", properties=dict(props or {}), sys_flag=sys_flag)


def test_apply_delay_level_redirects_and_clamps() -> None:
    m = apply_delay_level(msg(props={"DELAY": "9"}), LEVELS, now_ms=1000)
    assert (m.topic, m.queue_id, m.tags_code) == (SCHEDULE_TOPIC, 2, 11_000)  # level 9 → last level (3)
    assert m.properties == {"DELAY": "3", "REAL_TOPIC": "Real", "REAL_QID": "3"}
    for props, sys_flag in (({}, 0), ({"DELAY": "0"}, 0), ({"DELAY": "-1"}, 0), ({"DELAY": "x"}, 0),
                            ({"DELAY": "1"}, int(SysFlag.TRANSACTION_PREPARED))):  # fmt: skip
        unchanged = apply_delay_level(msg(props=props, sys_flag=sys_flag), LEVELS, 0)
        assert unchanged.topic == "Real" and "REAL_TOPIC" not in unchanged.properties


def test_message_timeup_restores_the_real_queue() -> None:
    rec = MessageRecord(topic=SCHEDULE_TOPIC, body=b"b", properties={"DELAY": "2", "REAL_TOPIC": "R", "REAL_QID": "1",
                        "TAGS": "t"}, reconsume_times=2, born_timestamp=5)  # fmt: skip
    real = message_timeup(rec)
    assert real is not None
    assert (real.topic, real.queue_id, real.reconsume_times, real.born_timestamp) == ("R", 1, 2, 5)
    assert (
        "DELAY" not in real.properties
        and real.properties["TAGS"] == "t"
        and real.properties["WAIT"] == "false"
    )
    assert (
        message_timeup(MessageRecord(topic=SCHEDULE_TOPIC, body=b"", properties={"REAL_TOPIC": "R"})) is None
    )


async def test_schedule_service_delivers_at_the_due_time_and_keeps_progress(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    store = MemoryMessageStore(StoreConfig(store_path_root_dir=str(tmp_path)), clock=clock)
    await store.start()
    offsets = DelayOffsetManager(str(tmp_path), clock)
    svc = ScheduleMessageService(store, offsets, LEVELS, clock)
    store.add_dispatch_listener(lambda r: svc.on_message_arriving(r.topic))
    await svc.start()
    try:
        for body, level in ((b"a", 2), (b"b", 2), (b"c", 1)):
            m = MessageToStore(topic="Real", queue_id=0, body=body, properties={"DELAY": str(level)})
            assert (await store.put_message(apply_delay_level(m, LEVELS, clock.now_ms()))).ok
        await clock.advance(1.0)
        await asyncio.sleep(0.01)
        res = store.get_messages("Real", 0, 0, 10)
        assert [decode_record(v).body for v in res.buffers] == [b"c"]  # level 1 (1 s) is due, level 2 is not
        await clock.advance(4.0)
        await asyncio.sleep(0.01)
        res = store.get_messages("Real", 0, 0, 10)
        assert [decode_record(v).body for v in res.buffers] == [b"c", b"a", b"b"]
        assert offsets.table() == {1: 1, 2: 2} and svc.delivered == 3
        assert await svc.deliver_level(2) is None  # nothing left, nothing delivered twice
        assert store.max_offset_in_queue("Real", 0) == 3
    finally:
        await svc.stop()
        await store.stop()
    offsets.persist()
    reloaded = DelayOffsetManager(str(tmp_path), clock)
    assert reloaded.load() and reloaded.table() == {1: 1, 2: 2}


# -- handler decisions -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "offset", "code"),
    [
        (GetStatus.FOUND, 3, ResponseCode.SUCCESS),
        (GetStatus.NO_MATCHED_MESSAGE, 3, ResponseCode.PULL_RETRY_IMMEDIATELY),
        (GetStatus.MESSAGE_WAS_REMOVING, 3, ResponseCode.PULL_RETRY_IMMEDIATELY),
        (GetStatus.NO_MESSAGE_IN_QUEUE, 0, ResponseCode.PULL_NOT_FOUND),
        (GetStatus.NO_MESSAGE_IN_QUEUE, 2, ResponseCode.PULL_OFFSET_MOVED),
        (GetStatus.NO_MATCHED_LOGIC_QUEUE, 0, ResponseCode.PULL_NOT_FOUND),
        (GetStatus.NO_MATCHED_LOGIC_QUEUE, 2, ResponseCode.PULL_OFFSET_MOVED),
        (GetStatus.OFFSET_OVERFLOW_ONE, 3, ResponseCode.PULL_NOT_FOUND),
        (GetStatus.OFFSET_FOUND_NULL, 3, ResponseCode.PULL_NOT_FOUND),
        (GetStatus.OFFSET_OVERFLOW_BADLY, 9, ResponseCode.PULL_OFFSET_MOVED),
        (GetStatus.OFFSET_TOO_SMALL, 0, ResponseCode.PULL_OFFSET_MOVED),
    ],
)
def test_pull_response_codes(status: GetStatus, offset: int, code: int) -> None:
    assert pull_response_code(status, offset) == code


def test_search_offset_bounds() -> None:
    assert search_offset(4, 0, 10, upper_bound=False) == 4
    assert search_offset(4, 0, 10, upper_bound=True) == 3
    assert search_offset(10, 0, 10, upper_bound=True) == 9  # every message older: the last one
    assert search_offset(0, 0, 10, upper_bound=True) == 0  # every message newer
    assert search_offset(0, 0, 0, upper_bound=True) == 0  # empty queue


def test_send_header_short_and_long_names() -> None:
    long_names = {"producerGroup": "P", "topic": "T", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
                  "queueId": "1", "sysFlag": "0", "bornTimestamp": "7", "flag": "0", "properties": "",
                  "reconsumeTimes": "2", "unitMode": "false", "maxReconsumeTimes": "3"}  # fmt: skip
    v1 = SendHeader.parse(RemotingCommand(code=RequestCode.SEND_MESSAGE, ext_fields=long_names))
    short = dict(zip("abcdefghijkl", long_names.values(), strict=True))
    v2 = SendHeader.parse(RemotingCommand(code=RequestCode.SEND_MESSAGE_V2, ext_fields=short))
    assert v1 == v2 and (v1.queue_id, v1.reconsume_times, v1.max_reconsume_times, v1.batch) == (
        1,
        2,
        3,
        False,
    )


def test_put_status_mapping() -> None:
    cmd = RemotingCommand(code=RequestCode.SEND_MESSAGE_V2)
    ext = {"MSG_REGION": "r", "TRACE_ON": "true"}
    assert put_status_response(cmd, PutResult(PutStatus.PUT_OK), 10, ext) is None
    assert (
        put_status_response(cmd, PutResult(PutStatus.FLUSH_DISK_TIMEOUT), 10, ext) is None
    )  # counts as sent
    cases = {PutStatus.MESSAGE_ILLEGAL: 13, PutStatus.PROPERTIES_SIZE_EXCEEDED: 13,
             PutStatus.SERVICE_NOT_AVAILABLE: 14, PutStatus.FLUSH_DISK_FAILED: 14}  # fmt: skip
    for status, code in cases.items():
        answer = put_status_response(cmd, PutResult(status, remark="why"), 10, ext)
        assert answer is not None and answer.code == code and answer.ext_fields == ext and answer.remark


def test_retry_copy_keeps_the_first_topic_and_id() -> None:
    first = MessageRecord(topic="T", body=b"x", properties={"TAGS": "a"}, physical_offset=96,
                          store_host=("127.0.0.1", 10911), reconsume_times=0)  # fmt: skip
    copy = retry_copy(first, "%RETRY%G", 0, 3)
    assert copy.reconsume_times == 1 and copy.properties["RETRY_TOPIC"] == "T"
    assert copy.properties["ORIGIN_MESSAGE_ID"] == first.offset_msg_id and copy.properties["DELAY"] == "3"
    again = MessageRecord(topic="%RETRY%G", body=b"x", properties=copy.properties, physical_offset=500,
                          reconsume_times=1)  # fmt: skip
    copy2 = retry_copy(again, "%RETRY%G", 0, 4)
    assert (
        copy2.properties["RETRY_TOPIC"] == "T"
        and copy2.properties["ORIGIN_MESSAGE_ID"] == first.offset_msg_id
    )


def test_message_queue_keyed_bodies_are_fastjson_object_keys() -> None:
    body = mq_keyed_json([(MessageQueue("t", "b", 1), {"maxOffset": 3})], consumeTps=0.0)
    assert body.startswith(b'{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":1,"topic":"t"}:')
    parsed = fastjson.loads(body)
    [(key, value)] = parsed["offsetTable"].items()
    assert dict(key) == {"brokerName": "b", "queueId": 1, "topic": "t"} and value == {"maxOffset": 3}
    assert properties_text({"a": True, "n": ("x:1", "y:2"), "p": 5}) == "a=true\nn=x:1;y:2\np=5\n"
