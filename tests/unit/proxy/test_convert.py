"""gRPC messages ↔ RocketMQ properties and records: what both official clients check."""

from __future__ import annotations

import gzip
import hashlib
import zlib

import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from rocketmq.grpc_protocol import definition_pb2 as pb

from orbitmq.protocol.record import MessageRecord, Prop, SysFlag
from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.convert import outgoing_message, record_to_message
from orbitmq.proxy.status import Code, ProxyError

CFG = ProxyConfig()
NOW = 1_700_000_000_000


def grpc_message(**sp: object) -> pb.Message:
    props = pb.SystemProperties(
        message_id="01ABC", body_encoding=pb.Encoding.IDENTITY, message_type=pb.MessageType.NORMAL
    )
    for k, v in sp.items():
        if k == "keys":
            props.keys.extend(v)  # type: ignore[arg-type]
        elif isinstance(v, timestamp_pb2.Timestamp | duration_pb2.Duration):
            getattr(props, k).CopyFrom(v)
        else:
            setattr(props, k, v)
    return pb.Message(
        topic=pb.Resource(name="T"), body=b"body", system_properties=props, user_properties={"u": "1"}
    )


def test_normal_message_properties() -> None:
    out = outgoing_message(grpc_message(tag="A", keys=["k1", "k2"], born_host="h1"), CFG, NOW)
    assert out.properties == {"u": "1", "TAGS": "A", "KEYS": "k1 k2", "UNIQ_KEY": "01ABC", "__BORNHOST": "h1"}
    assert out.sys_flag == 0 and out.born_timestamp_ms == NOW


def test_fifo_delay_and_transaction_properties() -> None:
    fifo = outgoing_message(grpc_message(message_type=pb.MessageType.FIFO, message_group="g1"), CFG, NOW)
    assert fifo.properties[Prop.SHARDING_KEY] == "g1" and fifo.message_group == "g1"
    at = timestamp_pb2.Timestamp(seconds=NOW // 1000 + 10)
    delay = outgoing_message(grpc_message(message_type=pb.MessageType.DELAY, delivery_timestamp=at), CFG, NOW)
    assert delay.properties[Prop.TIMER_DELIVER_MS] == str(NOW + 10_000)
    tx = outgoing_message(
        grpc_message(message_type=pb.MessageType.TRANSACTION,
                     orphaned_transaction_recovery_duration=duration_pb2.Duration(seconds=7)),
        CFG, NOW,
    )  # fmt: skip
    assert tx.sys_flag & SysFlag.TRANSACTION_PREPARED
    assert tx.properties[Prop.TRAN_MSG] == "true" and tx.properties[Prop.PGROUP] == "T"
    assert tx.properties[Prop.CHECK_IMMUNITY_TIME_IN_SECONDS] == "7"


def test_gzip_bodies_are_stored_inflated() -> None:
    msg = grpc_message(body_encoding=pb.Encoding.GZIP)
    msg.body = gzip.compress(b"inflated")
    assert outgoing_message(msg, CFG, NOW).body == b"inflated"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"message_type": pb.MessageType.FIFO},
            Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
        ),  # FIFO without group
        ({"message_group": "g"}, Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE),  # group on a NORMAL message
        ({"tag": "a|b"}, Code.ILLEGAL_MESSAGE_TAG),
        ({"message_id": ""}, Code.ILLEGAL_MESSAGE_ID),
    ],
)
def test_invalid_messages(change: dict[str, object], code: int) -> None:
    with pytest.raises(ProxyError) as err:
        outgoing_message(grpc_message(**change), CFG, NOW)
    assert err.value.code == code


def test_delivery_too_far_ahead_is_illegal() -> None:
    at = timestamp_pb2.Timestamp(seconds=NOW // 1000 + 2 * 86400)
    with pytest.raises(ProxyError) as err:
        outgoing_message(grpc_message(message_type=pb.MessageType.DELAY, delivery_timestamp=at), CFG, NOW)
    assert err.value.code == Code.ILLEGAL_DELIVERY_TIME


def record(**kw: object) -> MessageRecord:
    base: dict[str, object] = {
        "topic": "T", "body": b"hello", "queue_id": 2, "queue_offset": 7, "physical_offset": 100,
        "born_timestamp": NOW, "store_timestamp": NOW + 5, "store_host": ("10.0.0.2", 10911),
        "properties": {"UNIQ_KEY": "01XYZ", "TAGS": "A", "KEYS": "k1 k2", "u": "1", "POP_CK": "x"},
    }  # fmt: skip
    base.update(kw)
    return MessageRecord(**base)  # type: ignore[arg-type]


def test_delivered_message_has_what_the_clients_require() -> None:
    m = record_to_message(record(), "T", receipt_handle="h", reconsume_times=1)
    sp = m.system_properties
    assert m.topic.name == "T" and m.body == b"hello" and dict(m.user_properties) == {"u": "1"}
    assert sp.message_id == "01XYZ" and sp.tag == "A" and list(sp.keys) == ["k1", "k2"]
    assert sp.body_digest.type == pb.DigestType.MD5
    assert sp.body_digest.checksum == hashlib.md5(b"hello").hexdigest().upper()
    assert sp.body_encoding == pb.Encoding.IDENTITY and sp.receipt_handle == "h"
    assert sp.delivery_attempt == 2 and sp.queue_id == 2 and sp.queue_offset == 7
    assert sp.store_host == "10.0.0.2:10911" and sp.message_type == pb.MessageType.NORMAL


def test_compressed_records_are_delivered_inflated_as_identity() -> None:
    m = record_to_message(record(body=zlib.compress(b"big body"), sys_flag=int(SysFlag.COMPRESSED)), "T")
    assert m.body == b"big body" and m.system_properties.body_encoding == pb.Encoding.IDENTITY


def test_fifo_and_timed_messages_keep_group_and_delivery_time() -> None:
    props = {"UNIQ_KEY": "1", Prop.SHARDING_KEY: "g", Prop.TIMER_DELIVER_MS: str(NOW)}
    sp = record_to_message(record(properties=props), "T").system_properties
    assert sp.message_group == "g" and sp.delivery_timestamp.seconds == NOW // 1000
    assert sp.message_type == pb.MessageType.DELAY
