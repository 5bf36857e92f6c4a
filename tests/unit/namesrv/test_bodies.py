"""NameServer bodies: RegisterBrokerBody (JSON, Java-flavoured JSON, compressed), DataVersion, TopicList."""

from __future__ import annotations

import struct
import zlib

import orjson
import pytest

from orbitmq.core.errors import ProtocolError
from orbitmq.namesrv.bodies import (
    REGISTER_BODY_INFLATED_BYTES_MAX,
    RegisterBrokerBody,
    decode_data_version,
    decode_register_broker_body,
    decode_topic_route_queue_datas,
    encode_kv_table,
    encode_register_broker_body,
    encode_topic_list,
)
from orbitmq.namesrv.routes import DataVersion, QueueData, TopicConfig
from orbitmq.protocol.codes import Version

V5 = int(Version.V5_3_3)
BODY = RegisterBrokerBody(
    DataVersion(0, 1700000000000, 7),
    (TopicConfig("TopicTest", 4, 4, 6), TopicConfig("%RETRY%g", 1, 1, 6, 0), TopicConfig("TBW102", 8, 8, 7)),
    ("127.0.0.1:5000",),
)


# A body as a Java 5.x broker writes it (fastjson: alphabetical, TopicConfigAndMappingSerializeWrapper fields,
# and a static-topic mapping whose Map<Integer,...> keys are unquoted).
JAVA_BODY = (
    b'{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"stateVersion":0,'
    b'"timestamp":1700000000123},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1700000000000},'
    b'"topicConfigTable":{"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,'
    b'"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4},'
    b'"SELF_TEST_TOPIC":{"attributes":{},"order":false,"perm":6,"readQueueNums":1,"topicFilterType":"SINGLE_TAG",'
    b'"topicName":"SELF_TEST_TOPIC","topicSysFlag":0,"writeQueueNums":1}},'
    b'"topicQueueMappingDetailMap":{},"topicQueueMappingInfoMap":{"st":{"bname":"broker-a","currIdMap":{0:0,1:1},'
    b'"epoch":0,"totalQueues":2,"topic":"st"}}}}'
)


def test_json_body_round_trips() -> None:
    assert (
        decode_register_broker_body(encode_register_broker_body(BODY), compressed=False, broker_version=V5)
        == BODY
    )


def test_java_body_with_fastjson_keys_decodes() -> None:
    body = decode_register_broker_body(JAVA_BODY, compressed=False, broker_version=V5)
    assert body.data_version == DataVersion(0, 1700000000123, 3)
    assert body.topic_configs == (
        TopicConfig("TopicTest", 4, 4, 6, 0),
        TopicConfig("SELF_TEST_TOPIC", 1, 1, 6, 0),
    )
    assert body.filter_server_list == ()


def test_compressed_body_round_trips_without_topic_sys_flag() -> None:
    # The compressed line form has no topicSysFlag (Java loses it too), so give it 0 here.
    raw = encode_register_broker_body(BODY, compressed=True)
    assert decode_register_broker_body(raw, compressed=True, broker_version=V5) == BODY


def java_compressed(
    version: DataVersion, lines: list[str], servers: bytes, mappings: list[bytes] | None
) -> bytes:
    def chunk(b: bytes) -> bytes:
        return struct.pack(">i", len(b)) + b

    out = chunk(orjson.dumps(version.to_json())) + struct.pack(">i", len(lines))
    out += b"".join(chunk(s.encode()) for s in lines) + chunk(servers)
    if mappings is not None:
        out += struct.pack(">i", len(mappings)) + b"".join(chunk(m) for m in mappings)
    return zlib.compress(out, 9)


def test_compressed_java_layout_with_attributes_and_static_mappings() -> None:
    raw = java_compressed(
        DataVersion(1, 2, 3),
        ['TopicTest 4 4 6 SINGLE_TAG {"+message.type":"NORMAL"}', "TBW102 8 8 7 SINGLE_TAG {}"],
        b"[]",
        [b'{"bname":"broker-a","currIdMap":{0:0},"topic":"st"}'],
    )
    body = decode_register_broker_body(raw, compressed=True, broker_version=V5)
    assert body.data_version == DataVersion(1, 2, 3)
    assert body.topic_configs == (TopicConfig("TopicTest", 4, 4, 6), TopicConfig("TBW102", 8, 8, 7))


def test_compressed_body_of_a_4x_broker_has_no_mapping_section() -> None:
    raw = java_compressed(DataVersion(), ["T 1 1 6 SINGLE_TAG {}"], b'["127.0.0.1:1"]', None)
    body = decode_register_broker_body(raw, compressed=True, broker_version=int(Version.V4_9_4))
    assert body.filter_server_list == ("127.0.0.1:1",)


def test_pre_3_0_11_body_is_the_wrapper_itself() -> None:
    raw = b'{"dataVersion":{"counter":1,"timestamp":5},"topicConfigTable":{"T":{"readQueueNums":2,"writeQueueNums":2}}}'
    body = decode_register_broker_body(raw, compressed=False, broker_version=int(Version.V3_0_7_SNAPSHOT))
    assert body == RegisterBrokerBody(DataVersion(0, 5, 1), (TopicConfig("T", 2, 2),))


def test_empty_body_is_version_zero_without_topics() -> None:
    assert decode_register_broker_body(b"", compressed=True, broker_version=V5) == RegisterBrokerBody()


@pytest.mark.parametrize(
    ("raw", "compressed"),
    [
        (b"not json", False),
        (b"[1,2]", False),
        (b'{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"readQueueNums":"x"}}}}', False),
        (b'{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":5}}}', False),
        (b'{"filterServerList":5}', False),
        (b"garbage", True),
        (zlib.compress(b"\x00\x00\x00\x02{}"), True),  # truncated after the data version
        (
            zlib.compress(
                struct.pack(">i", 2) + b"{}" + struct.pack(">i", 1) + struct.pack(">i", 3) + b"T 1"
            ),
            True,
        ),
        (zlib.compress(struct.pack(">i", -5)), True),
    ],
)
def test_malformed_bodies_raise_protocol_error(raw: bytes, compressed: bool) -> None:
    with pytest.raises(ProtocolError):
        decode_register_broker_body(raw, compressed=compressed, broker_version=V5)


def test_compressed_body_inflating_too_far_is_refused() -> None:
    bomb = zlib.compress(b"\x00" * (REGISTER_BODY_INFLATED_BYTES_MAX + 1), 9)
    with pytest.raises(ProtocolError, match="inflates beyond"):
        decode_register_broker_body(bomb, compressed=True, broker_version=V5)


def test_data_version_body() -> None:
    assert decode_data_version(b'{"counter":9,"stateVersion":1,"timestamp":2}') == DataVersion(1, 2, 9)
    assert decode_data_version(b"") == DataVersion()
    assert orjson.loads(orjson.dumps(DataVersion(1, 2, 9).to_json())) == {
        "counter": 9,
        "stateVersion": 1,
        "timestamp": 2,
    }


def test_topic_route_queue_datas_accept_both_spellings_of_the_sys_flag() -> None:
    raw = (
        b'{"queueDatas":[{"brokerName":"a","perm":6,"readQueueNums":2,"writeQueueNums":2,"topicSynFlag":1}]}'
    )
    assert decode_topic_route_queue_datas(raw) == [QueueData("a", 2, 2, 6, 1)]
    assert decode_topic_route_queue_datas(b"") == []
    with pytest.raises(ProtocolError):
        decode_topic_route_queue_datas(b'{"queueDatas":[{"perm":6}]}')


def test_topic_list_and_kv_table_shapes() -> None:
    assert orjson.loads(encode_topic_list(["a", "b"])) == {"topicList": ["a", "b"]}
    assert orjson.loads(encode_topic_list([], "1.2.3.4:5")) == {"brokerAddr": "1.2.3.4:5", "topicList": []}
    assert orjson.loads(encode_kv_table({"k": "v"})) == {"table": {"k": "v"}}
