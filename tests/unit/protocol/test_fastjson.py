"""The tolerant parser for fastjson output (remoting-protocol.md section 5)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.fastjson import NESTING_DEPTH_MAX, ObjectKey, loads


def test_standard_json_takes_the_fast_path() -> None:
    assert loads(b'{"a":[1,2.5,"x",true,false,null]}') == {"a": [1, 2.5, "x", True, False, None]}


def test_unquoted_integer_keys_become_ints() -> None:
    # What a Java NameServer sends to pre-4.9.4 clients (section 5.1).
    body = (
        b'{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a"}]}'
    )
    assert loads(body)["brokerDatas"][0]["brokerAddrs"] == {0: "127.0.0.1:10911", 1: "127.0.0.1:10921"}


def test_negative_and_long_integer_keys() -> None:
    assert loads("{-1:1, 9223372036854775807:2}") == {-1: 1, 9223372036854775807: 2}


def test_object_keys_become_hashable_object_keys() -> None:
    text = '{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:123,{"brokerName":"b","queueId":1,"topic":"t"}:7}}'
    table = loads(text)["offsetTable"]
    keys = sorted(table, key=lambda k: k["queueId"])
    assert all(isinstance(k, ObjectKey) for k in keys)
    assert dict(keys[0]) == {"brokerName": "b", "queueId": 0, "topic": "t"}
    assert table[ObjectKey({"brokerName": "b", "queueId": 1, "topic": "t"})] == 7
    assert keys[0] == {"brokerName": "b", "queueId": 0, "topic": "t"}


def test_nested_containers_inside_object_keys_are_frozen() -> None:
    (key,) = loads('{{"a":{"b":[1,2]}}:1}')
    assert key["a"] == ObjectKey({"b": (1, 2)})
    assert hash(key) == hash(ObjectKey({"a": {"b": [1, 2]}}))


def test_array_keys_become_tuples() -> None:
    assert loads("{[1,2]:3}") == {(1, 2): 3}


def test_single_quotes_identifier_keys_and_trailing_commas() -> None:
    assert loads("{'a':'it\\'s', b:[1,2,], c:{},}") == {"a": "it's", "b": [1, 2], "c": {}}


def test_escapes_and_surrogate_pairs() -> None:
    assert loads('{0:"\\u00e9\\n\\t\\"\\\\\\/\\ud83d\\ude00"}') == {0: 'é\n\t"\\/😀'}


def test_lone_high_surrogate_is_kept() -> None:
    assert loads('{0:"\\ud83d\\u0041"}') == {0: "\ud83dA"}


def test_numbers_keep_int_and_float_apart() -> None:
    assert loads("{0:[0,-12,1.5,1e3,-2.5E-1]}") == {0: [0, -12, 1.5, 1000.0, -0.25]}


def test_utf8_bytes_and_str_input_agree() -> None:
    assert loads("{0:'ü'}".encode()) == loads("{0:'ü'}") == {0: "ü"}


@pytest.mark.parametrize(
    "bad",
    [
        "{0:}",
        "{0 1}",
        "{0:1",
        "[1 2]",
        "{0:'x}",
        '{0:"\\x"}',
        '{0:"\\u12"}',
        "{0:1} x",
        "",
        "{0:tru}",
        "{:1}",
        '{0:"a\nb"}',
        "{0:01}",
    ],
)
def test_malformed_input_raises_protocol_error(bad: str) -> None:
    with pytest.raises(ProtocolError):
        loads(bad)


def test_invalid_utf8_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="UTF-8"):
        loads(b"{0:'\xff'}")


def test_nesting_is_bounded() -> None:
    with pytest.raises(ProtocolError, match="deep"):
        loads("{0:" * (NESTING_DEPTH_MAX + 10) + "1" + "}" * (NESTING_DEPTH_MAX + 10))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_slow_path_agrees_with_a_standard_parser(value: object) -> None:
    # Force the tolerant parser by appending a trailing comma inside a wrapper object.
    text = '{"v":' + json.dumps(value) + ",}"
    assert loads(text) == {"v": value}


@given(st.dictionaries(st.integers(-(2**63), 2**63 - 1), st.text(max_size=5), max_size=5))
def test_unquoted_integer_keys_round_trip(table: dict[int, str]) -> None:
    text = "{" + ",".join(f"{k}:{orjson.dumps(v).decode()}" for k, v in table.items()) + "}"
    assert loads(text) == table
