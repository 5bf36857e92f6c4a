"""The message record codec: hypothesis round trips and the fixed layout facts clients rely on."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.record import (
    MAGIC_V1,
    MAGIC_V2,
    RecordCheck,
    UniqueIdGenerator,
    check_record,
    decode_batch_body,
    decode_offset_msg_id,
    decode_properties,
    decode_record,
    decode_records,
    encode_batch_body,
    encode_properties,
    encode_record,
    java_string_hash,
    normalize_ipv4,
    offset_msg_id,
    record_properties,
    verify_record_crc,
)

prop_text = st.text(
    alphabet=st.characters(blacklist_characters="\x01\x02", blacklist_categories=("Cs",)), max_size=20
)
props = st.dictionaries(prop_text.filter(bool), prop_text, max_size=6)
ipv4 = st.ip_addresses(v=4).map(str)
port = st.integers(0, 65535)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(0, 2**62)


@given(
    topic=st.text(alphabet="abcdefghijklmnopqrstuvwxyz%_-0123456789", min_size=1, max_size=200),
    body=st.binary(max_size=2048),
    properties=props,
    queue_id=st.integers(0, 1023),
    flag=i32,
    queue_offset=i64,
    physical_offset=i64,
    sys_flag=st.integers(0, 0xF),
    born=st.tuples(ipv4, port),
    store=st.tuples(ipv4, port),
    times=st.tuples(i64, i64),
    reconsume=st.integers(0, 100),
)
def test_record_round_trip(
    topic,
    body,
    properties,
    queue_id,
    flag,
    queue_offset,
    physical_offset,
    sys_flag,
    born,
    store,
    times,
    reconsume,
) -> None:
    data = encode_record(
        topic=topic,
        body=body,
        properties=properties,
        queue_id=queue_id,
        flag=flag,
        queue_offset=queue_offset,
        physical_offset=physical_offset,
        sys_flag=sys_flag,
        born_timestamp=times[0],
        born_host=born,
        store_timestamp=times[1],
        store_host=store,
        reconsume_times=reconsume,
    )
    rec = decode_record(data)
    assert (rec.topic, rec.body, rec.properties) == (topic, body, properties)
    assert (rec.queue_id, rec.flag, rec.queue_offset, rec.physical_offset) == (
        queue_id,
        flag,
        queue_offset,
        physical_offset,
    )
    assert (rec.sys_flag, rec.born_host, rec.store_host, rec.reconsume_times) == (
        sys_flag,
        born,
        store,
        reconsume,
    )
    assert (rec.born_timestamp, rec.store_timestamp, rec.store_size) == (times[0], times[1], len(data))
    magic = struct.unpack_from(">i", data, 4)[0]
    assert magic == (MAGIC_V2 if len(topic.encode()) > 127 else MAGIC_V1)
    assert check_record(data, 0, len(data)) == (RecordCheck.VALID, len(data))
    assert verify_record_crc(memoryview(data))
    assert record_properties(memoryview(data)) == properties
    assert decode_records(data + data) == [rec, rec]


def test_fixed_prefix_is_88_bytes_with_ipv4_hosts() -> None:
    data = encode_record(topic="T", body=b"abc", properties={})
    assert len(data) == 88 + 3 + 1 + 1 + 2
    assert struct.unpack_from(">i", data, 84)[0] == 3  # BODYLENGTH right after the 84-byte header


@given(st.binary(max_size=300))
def test_garbage_never_decodes_silently(data: bytes) -> None:
    try:
        rec = decode_record(data)
    except ProtocolError:
        return
    assert rec.store_size == len(data) or rec.store_size <= len(data)


def test_truncated_and_flipped_records_are_rejected() -> None:
    data = encode_record(topic="T", body=b"payload", properties={"TAGS": "a"})
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode_record(data[:cut])
    flipped = bytearray(data)
    flipped[90] ^= 0x01
    assert not verify_record_crc(memoryview(flipped))
    assert check_record(flipped, 0, len(flipped)) == (RecordCheck.INVALID, 0)


@given(props)
def test_properties_round_trip(p: dict[str, str]) -> None:
    text = encode_properties(p)
    assert decode_properties(text) == p
    assert text == "" or text.endswith("\x02")


def test_ali_ons_sloppy_properties_are_tolerated() -> None:
    assert decode_properties("TAGS\x01null\x02KEYS\x01a b\x02\x02") == {"TAGS": "null", "KEYS": "a b"}


def test_java_string_hash_matches_java() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("TagA") == 2598919
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -2147483648  # the famous Integer.MIN_VALUE hash
    assert java_string_hash("\u00e9") == 233


def test_offset_message_id_matches_observed_value() -> None:
    assert offset_msg_id("127.0.0.1", 10911, 0x263) == "7F00000100002A9F0000000000000263"
    assert decode_offset_msg_id("7F00000100002A9F0000000000000263") == ("127.0.0.1", 10911, 0x263)
    with pytest.raises(ProtocolError):
        decode_offset_msg_id("zz")


def test_unique_ids_are_unique_and_32_hex_chars() -> None:
    gen = UniqueIdGenerator("10.0.0.5")
    ids = {gen.next_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and i.startswith("0A000005") for i in ids)


def test_record_hosts_are_ipv4_for_ali_ons() -> None:
    assert normalize_ipv4("::1") == "127.0.0.1"
    assert normalize_ipv4("::ffff:10.1.2.3") == "10.1.2.3"
    assert normalize_ipv4("192.168.1.1") == "192.168.1.1"


@given(st.lists(st.tuples(i32, st.binary(max_size=100), props), max_size=5))
def test_batch_body_round_trip(msgs) -> None:
    assert decode_batch_body(encode_batch_body(msgs)) == msgs


def test_malformed_batch_body_raises() -> None:
    good = encode_batch_body([(0, b"x", {"a": "b"})])
    with pytest.raises(ProtocolError):
        decode_batch_body(good[:-1])
