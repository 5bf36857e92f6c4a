"""The pop wire codec (orbitmq.protocol.pop): receipt handles, offset-info strings, headers, batch-ack body."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import (
    AckMessageRequestHeader,
    BatchAck,
    BatchAckMessageRequestBody,
    ChangeInvisibleTimeRequestHeader,
    ExtraInfo,
    NotificationRequestHeader,
    PopMessageRequestHeader,
    PopMessageResponseHeader,
    PopOffsetInfo,
    PoppedMessage,
    decode_bitset,
    encode_bitset,
    parse_msg_offset_info,
    parse_order_count_info,
    parse_pop_retry_topic_v2,
    parse_start_offset_info,
    pop_retry_topic_v1,
    pop_retry_topic_v2,
    real_topic,
    receipt_handles,
    retry_kind,
)


def test_extra_info_is_upstreams_eight_space_separated_fields() -> None:
    info = ExtraInfo.build(10, 1_700_000_000_000, 60_000, 3, "T", "broker-a", 2, 12)
    assert info.encode() == "10 1700000000000 60000 3 0 broker-a 2 12"
    assert ExtraInfo.parse(info.encode()) == info
    assert info.revive_time == 1_700_000_060_000 and not info.is_order
    retry = ExtraInfo.build(0, 1, 2, 999, "%RETRY%G_T", "b", 0, 5)
    assert retry.retry_kind == "1" and retry.is_order and retry.real_topic("T", "G") == "%RETRY%G_T"
    old = ExtraInfo.parse("10 1 2 3 0 b 2")  # the seven-field form of old clients
    assert old.queue_offset is None


@pytest.mark.parametrize(
    "bad", ["", "1 2 3", "x 1 2 3 0 b 0 0", "1 2 3 4 9 b 0 0", "1 2 3 4 0 b q 0", "1 2 3 4 0 b 0 z"]
)
def test_malformed_handles_are_protocol_errors(bad: str) -> None:
    with pytest.raises(ProtocolError):
        ExtraInfo.parse(bad)


def test_retry_topic_names_and_kinds() -> None:
    assert pop_retry_topic_v1("T", "G") == "%RETRY%G_T" and pop_retry_topic_v2("T", "G") == "%RETRY%G+T"
    assert [retry_kind(t) for t in ("T", "%RETRY%G_T", "%RETRY%G+T")] == ["0", "1", "2"]
    assert parse_pop_retry_topic_v2("%RETRY%G+T") == ("G", "T")
    assert parse_pop_retry_topic_v2("%RETRY%G_T") is None
    assert real_topic("T", "G", "2") == "%RETRY%G+T"
    with pytest.raises(ProtocolError):
        real_topic("T", "G", "7")


def test_offset_info_strings() -> None:
    info = PopOffsetInfo()
    info.add_queue("%RETRY%G_T", 0, 4, [4, 6])
    info.add_queue("T", 3, 10, [10, 11, 12])
    info.add_order_counts("T", 3, {10: 2, 11: 0})
    assert info.start_offset_info == "1 0 4;0 3 10"
    assert info.msg_offset_info == "1 0 4,6;0 3 10,11,12"
    assert info.order_count_info == "0 qo3%10 2;0 qo3%11 0;0 3 0"
    assert parse_start_offset_info(info.start_offset_info) == {"1@0": 4, "0@3": 10}
    assert parse_msg_offset_info(info.msg_offset_info) == {"1@0": [4, 6], "0@3": [10, 11, 12]}
    assert parse_order_count_info(info.order_count_info) == {"0@qo3%10": 2, "0@qo3%11": 0, "0@3": 0}
    for bad in ("0 3", "0 3 1;0 3 2", "0  3 1"):
        with pytest.raises(ProtocolError):
            parse_start_offset_info(bad)


def test_receipt_handles_are_rebuilt_as_the_java_client_does() -> None:
    header = PopMessageResponseHeader(1000, 30_000, 5, 0, "0 1 7;1 0 3", "0 1 7,9;1 0 3", "")
    retry_ck = ExtraInfo.build(3, 1000, 30_000, 5, "%RETRY%G_T", "b", 0, 3).encode()
    msgs = [
        PoppedMessage("T", 1, 7, None),
        PoppedMessage("T", 1, 9, None),
        PoppedMessage("T", 0, 3, retry_ck),  # rewritten retry message: the broker's POP_CK is kept
    ]
    handles = receipt_handles(header, msgs, "b")
    assert [h for h, _ in handles] == ["7 1000 30000 5 0 b 1 7", "7 1000 30000 5 0 b 1 9", retry_ck]
    with pytest.raises(ProtocolError):
        receipt_handles(header, [PoppedMessage("T", 2, 0, None)], "b")


def test_bitset_is_javas_little_endian_to_byte_array() -> None:
    # new BitSet(); set 0,1,2,3,5 → toByteArray() == {0x2F}; bit 9 → second byte 0x02.
    assert encode_bitset([0, 1, 2, 3, 5]) == base64.b64encode(b"\x2f").decode()
    assert encode_bitset([9]) == base64.b64encode(b"\x00\x02").decode()
    assert encode_bitset([]) == ""
    assert decode_bitset(encode_bitset([0, 31, 5])) == [0, 5, 31]
    with pytest.raises(ProtocolError):
        decode_bitset("!!")


@given(st.sets(st.integers(0, 200)))
def test_bitset_round_trip(bits: set[int]) -> None:
    assert decode_bitset(encode_bitset(bits)) == sorted(bits)


def test_batch_ack_body_round_trip_and_validation() -> None:
    ack = BatchAck("G", "T", "1", 4, 0, 3, 1000, 60_000, (0, 2))
    body = BatchAckMessageRequestBody("broker-a", (ack,)).encode()
    decoded = BatchAckMessageRequestBody.decode(body)
    assert decoded.broker_name == "broker-a" and decoded.acks == (ack,) and ack.offsets == [4, 6]
    for bad in (
        b"[]",
        b"{",
        b'{"acks":[{"c":"G"}]}',
        b'{"acks":[{"c":1,"t":"T","so":0,"q":0,"rq":0,"pt":0,"it":0}]}',
    ):
        with pytest.raises(ProtocolError):
            BatchAckMessageRequestBody.decode(bad)


def test_headers_round_trip_through_ext_fields() -> None:
    pop = PopMessageRequestHeader("G", "T", -1, 32, 60_000, 15_000, 123, 1, "TAG", "a||b", True, "att")
    fields = pop.to_fields()
    assert fields["order"] == "true" and fields["queueId"] == "-1" and fields["expType"] == "TAG"
    assert PopMessageRequestHeader.from_command(RemotingCommand.request(1, fields)) == pop
    negative = dict(fields, queueId="-7")
    assert PopMessageRequestHeader.from_command(RemotingCommand.request(1, negative)).queue_id == -1
    for header in (
        AckMessageRequestHeader("G", "T", 1, "h", 5),
        ChangeInvisibleTimeRequestHeader("G", "T", 1, "h", 5, 100),
        NotificationRequestHeader("G", "T", 2, 1000, 99, False, None),
    ):
        cmd = RemotingCommand.request(1, header.to_fields())
        assert type(header).from_command(cmd) == header
    with pytest.raises(ProtocolError):
        AckMessageRequestHeader.from_command(RemotingCommand.request(1, {"topic": "T"}))
