"""How half, committed, renewed, discarded and op records are built (upstream's properties and flags)."""

from __future__ import annotations

from orbitmq.broker.transaction.message import (
    check_body,
    committed_message,
    discarded_message,
    immunity_ms,
    is_half_message,
    op_body,
    parse_op_body,
    renewed_half,
    to_half,
)
from orbitmq.protocol.record import MessageRecord, Prop, SysFlag, decode_record
from orbitmq.store.api import MessageToStore

HALF = "RMQ_SYS_TRANS_HALF_TOPIC"


def half_record(**props: str) -> MessageRecord:
    base = {Prop.TRAN_MSG: "true", Prop.PGROUP: "PG", Prop.UNIQ_KEY: "U", Prop.REAL_TOPIC: "T",
            Prop.REAL_QID: "3", Prop.TAGS: "a", Prop.TRANSACTION_ID: "U"}  # fmt: skip
    return MessageRecord(topic=HALF, body=b"x", properties={**base, **props}, queue_offset=7,
                         physical_offset=4242, sys_flag=int(SysFlag.MULTI_TAGS), born_timestamp=11,
                         store_timestamp=12)  # fmt: skip


def test_which_sends_are_half_messages() -> None:
    assert is_half_message({Prop.TRAN_MSG: "true"}, 0, 0)
    assert is_half_message({Prop.TRAN_MSG: "TRUE"}, 0, 0)  # Boolean.parseBoolean
    assert not is_half_message({Prop.TRAN_MSG: "false"}, 0, 0)
    assert not is_half_message({}, 0, 0)
    assert not is_half_message({Prop.TRAN_MSG: "true"}, 2, 3)  # a pre-4.6.1 client's retry


def test_to_half_parks_the_message_in_the_half_queue_as_not_transactional() -> None:
    msg = MessageToStore(topic="T", queue_id=3, body=b"x", sys_flag=int(SysFlag.TRANSACTION_PREPARED) | 1,
                         properties={Prop.TRAN_MSG: "true", Prop.UNIQ_KEY: "U"})  # fmt: skip
    to_half(msg)
    assert (msg.topic, msg.queue_id, msg.sys_flag) == (HALF, 0, 1)
    assert msg.properties[Prop.REAL_TOPIC] == "T" and msg.properties[Prop.REAL_QID] == "3"
    assert msg.properties[Prop.TRANSACTION_ID] == "U"


def test_commit_restores_the_real_queue_with_the_commit_flag() -> None:
    out = committed_message(half_record())
    assert out is not None
    assert (out.topic, out.queue_id, out.body, out.prepared_transaction_offset) == ("T", 3, b"x", 4242)
    assert out.sys_flag == int(SysFlag.MULTI_TAGS) | int(SysFlag.TRANSACTION_COMMIT)
    assert Prop.TRAN_MSG not in out.properties and Prop.REAL_TOPIC not in out.properties
    assert out.properties[Prop.PGROUP] == "PG" and out.properties[Prop.UNIQ_KEY] == "U"
    assert out.born_timestamp == 11
    assert committed_message(half_record(REAL_QID="x")) is None


def test_renewed_copies_count_their_checks_and_discards_keep_everything() -> None:
    first = renewed_half(half_record())
    assert (
        first.topic == HALF and first.queue_id == 0 and first.properties[Prop.TRANSACTION_CHECK_TIMES] == "1"
    )
    again = renewed_half(half_record(TRANSACTION_CHECK_TIMES="4"))
    assert again.properties[Prop.TRANSACTION_CHECK_TIMES] == "5"
    moved = discarded_message(half_record())
    assert (moved.topic, moved.queue_id) == ("TRANS_CHECK_MAX_TIME_TOPIC", 0)
    assert moved.properties == half_record().properties


def test_immunity_and_op_bodies() -> None:
    assert immunity_ms({}, 6000) == 6000
    assert immunity_ms({Prop.CHECK_IMMUNITY_TIME_IN_SECONDS: "60"}, 6000) == 60_000
    assert immunity_ms({Prop.CHECK_IMMUNITY_TIME_IN_SECONDS: "2"}, 6000) == 6000  # never shorter
    assert op_body([3, 10]) == b"3,10,"
    assert parse_op_body(b"3,10,") == [3, 10]
    assert parse_op_body(b"3,,x,7") == [3, 7]


def test_the_check_body_is_the_half_message_as_a_message_of_its_real_topic() -> None:
    rec = decode_record(check_body(half_record()))
    assert (rec.topic, rec.queue_id, rec.queue_offset, rec.physical_offset) == ("T", 3, 7, 4242)
    assert rec.properties[Prop.PGROUP] == "PG" and rec.body == b"x"
