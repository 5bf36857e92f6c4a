"""The remoting frame codec: round trips, chunking, header normalisation, binary headers, limits, sniffing."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.codes import LanguageCode
from orbitmq.protocol.command import FLAG_RESPONSE, RemotingCommand
from orbitmq.protocol.frame import (
    FrameDecoder,
    WrongProtocolError,
    encode_command,
    encode_command_bytes,
    java_text,
)

INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


def frame(header: bytes, body: bytes = b"", serialize_type: int = 0) -> bytes:
    """A frame built straight from the documented layout, independent of the encoder under test."""
    return (
        struct.pack(">iI", 4 + len(header) + len(body), (serialize_type << 24) | len(header)) + header + body
    )


def json_frame(obj: object, body: bytes = b"") -> bytes:
    return frame(orjson.dumps(obj), body)


def decode_all(data: bytes, chunks: list[int] | None = None, **kw: int) -> list[RemotingCommand]:
    dec = FrameDecoder(**kw)  # type: ignore[arg-type]
    out: list[RemotingCommand] = []
    pieces = [data] if chunks is None else _split(data, chunks)
    for piece in pieces:
        dec.feed(piece)
        while (cmd := dec.next_command()) is not None:
            out.append(cmd)
    assert dec.buffered_bytes == 0
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def decode_one_error(data: bytes, **kw: int) -> ProtocolError:
    dec = FrameDecoder(**kw)  # type: ignore[arg-type]
    dec.feed(data)
    with pytest.raises(ProtocolError) as info:
        while dec.next_command() is not None:
            pass
    return info.value


commands = st.builds(
    RemotingCommand,
    code=INT32,
    opaque=INT32,
    flag=INT32,
    language=st.sampled_from([c.name for c in LanguageCode]) | st.text(max_size=8),
    version=INT32,
    remark=st.none() | st.text(max_size=50),
    ext_fields=st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=8),
    body=st.binary(max_size=300),
)


def assert_same(a: RemotingCommand, b: RemotingCommand) -> None:
    assert (a.code, a.opaque, a.flag, a.language, a.version, a.remark, a.ext_fields) == (
        b.code,
        b.opaque,
        b.flag,
        b.language,
        b.version,
        b.remark,
        b.ext_fields,
    )
    assert a.body_bytes() == b.body_bytes()


# -- round trips ----------------------------------------------------------------------------------------


@given(cmds=st.lists(commands, min_size=1, max_size=5), cuts=st.lists(st.integers(min_value=0), max_size=20))
@settings(max_examples=200)
def test_round_trip_any_chunking(cmds: list[RemotingCommand], cuts: list[int]) -> None:
    stream = b"".join(encode_command_bytes(c) for c in cmds)
    decoded = decode_all(stream, cuts)
    assert len(decoded) == len(cmds)
    for original, got in zip(cmds, decoded, strict=True):
        assert_same(original, got)
        assert got.serialize_type == 0


@given(cmds=st.lists(commands, min_size=1, max_size=3))
@settings(max_examples=50)
def test_whole_and_byte_at_a_time_agree(cmds: list[RemotingCommand]) -> None:
    stream = b"".join(encode_command_bytes(c) for c in cmds)
    whole = decode_all(stream)
    dec = FrameDecoder()
    one_by_one: list[RemotingCommand] = []
    for i in range(len(stream)):
        dec.feed(stream[i : i + 1])
        while (cmd := dec.next_command()) is not None:
            one_by_one.append(cmd)
    assert len(whole) == len(one_by_one) == len(cmds)
    for a, b in zip(whole, one_by_one, strict=True):
        assert_same(a, b)


def test_body_parts_are_written_back_to_back_not_joined() -> None:
    log = bytearray(b"xxHELLOyyWORLDzz")
    view = memoryview(log)
    parts = [view[2:7], view[9:14]]
    cmd = RemotingCommand(code=0, opaque=9, flag=FLAG_RESPONSE, body=parts)
    buffers = encode_command(cmd)
    assert len(buffers) == 3
    assert buffers[1] is parts[0] and buffers[2] is parts[1]
    (got,) = decode_all(b"".join(bytes(b) for b in buffers))
    assert got.body == b"HELLOWORLD"
    assert got.opaque == 9 and got.is_response


def test_empty_body_parts_are_skipped() -> None:
    cmd = RemotingCommand(code=1, body=[b"", memoryview(b"ab"), b""])
    buffers = encode_command(cmd)
    assert [bytes(b) for b in buffers[1:]] == [b"ab"]
    assert len(encode_command(RemotingCommand(code=1))) == 1


def test_encoded_header_layout() -> None:
    cmd = RemotingCommand(code=310, opaque=7, flag=0, ext_fields={"a": "PG"}, body=b"payload")
    data = encode_command_bytes(cmd)
    total, type_and_len = struct.unpack_from(">iI", data)
    assert data[4] == 0, "serializeType byte must be 0 (JSON): ali-ons does not mask it"
    assert total == len(data) - 4
    header = orjson.loads(data[8 : 8 + type_and_len])
    assert header == {
        "code": 310,
        "language": "PYTHON",
        "version": 479,
        "opaque": 7,
        "flag": 0,
        "extFields": {"a": "PG"},
        "serializeTypeCurrentRPC": "JSON",
    }
    assert data[8 + type_and_len :] == b"payload"


def test_remark_present_when_set_and_ext_values_forced_to_strings() -> None:
    cmd = RemotingCommand(code=1, remark="boom", ext_fields={"n": 5, "b": True})  # type: ignore[dict-item]
    data = encode_command_bytes(cmd)
    header = orjson.loads(data[8 : 8 + struct.unpack_from(">I", data, 4)[0]])
    assert header["remark"] == "boom"
    assert header["extFields"] == {"n": "5", "b": "true"}


def test_encode_refuses_frame_over_limit() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_command(RemotingCommand(code=0, body=b"x" * 2000), frame_bytes_max=1000)


# -- extFields normalisation (the Java way) --------------------------------------------------------------


def test_ali_ons_send_header_is_normalised() -> None:
    # The header ali-ons sends for SEND_MESSAGE_V2 (reference §1.6, observed against the real client).
    raw = (
        b'{"code":310,"language":"JAVA","opaque":7,"flag":0,"version":121,'
        b'"extFields":{"a":"PG","b":"TopicTest","c":"TBW102","d":4,"e":0,"f":0,"g":1795239044871,'
        b'"h":0,"i":"TAGS\\u0001TagA\\u0002","j":0,"k":false}}'
    )
    (cmd,) = decode_all(frame(raw))
    assert (cmd.code, cmd.language, cmd.opaque, cmd.flag, cmd.version) == (310, "JAVA", 7, 0, 121)
    assert cmd.remark is None
    assert cmd.ext_fields == {
        "a": "PG",
        "b": "TopicTest",
        "c": "TBW102",
        "d": "4",
        "e": "0",
        "f": "0",
        "g": "1795239044871",
        "h": "0",
        "i": "TAGS\x01TagA\x02",
        "j": "0",
        "k": "false",
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-1, "-1"),
        (True, "true"),
        (False, "false"),
        ("x", "x"),
        ("", ""),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (-0.0, "-0.0"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1.5e-5, "1.5E-5"),
        (1234567.0, "1234567.0"),
        (12345678.0, "1.2345678E7"),
        (1e20, "1.0E20"),
        ({"a": 1, "b": [True, None]}, '{"a":1,"b":[true,null]}'),
        ([1, "x"], '[1,"x"]'),
    ],
)
def test_java_text(value: object, text: str) -> None:
    assert java_text(value) == text


def test_null_values_dropped_and_missing_ext_fields_is_empty() -> None:
    (a, b, c) = decode_all(
        json_frame({"code": 1, "extFields": {"x": None, "y": "1"}})
        + json_frame({"code": 2})
        + json_frame({"code": 3, "extFields": None})
    )
    assert a.ext_fields == {"y": "1"}
    assert b.ext_fields == {} and c.ext_fields == {}
    assert (b.opaque, b.flag, b.version, b.language) == (0, 0, 0, "JAVA")


def test_unknown_header_keys_ignored() -> None:
    (cmd,) = decode_all(json_frame({"code": 5, "serializeTypeCurrentRPC": "JSON", "whatever": [1]}))
    assert cmd.code == 5


# -- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (struct.pack(">i", 16 * 1024 * 1024 + 1), "exceeds frame_bytes_max"),
        (struct.pack(">i", -5), "smaller than"),
        (struct.pack(">i", 3) + b"abc", "smaller than"),
        (struct.pack(">iI", 10, 100) + b"x" * 6, "header length 100 exceeds frame length 10"),
        (frame(b"{not json"), "invalid JSON"),
        (frame(b""), "invalid JSON"),
        (frame(b"\xff\xfe"), "invalid JSON"),
        (frame(b"[1,2]"), "is a array"),
        (frame(b"42"), "is a number"),
        (frame(b'"s"'), "is a string"),
        (json_frame({"opaque": 1}), "'code' is missing"),
        (json_frame({"code": "10"}), "'code' is a string"),
        (json_frame({"code": True}), "'code' is a boolean"),
        (json_frame({"code": 1.5}), "'code' is a number"),
        (json_frame({"code": 2**31}), "32-bit"),
        (json_frame({"code": 1, "opaque": [1]}), "'opaque' is a array"),
        (json_frame({"code": 1, "language": 3}), "'language' is a number"),
        (json_frame({"code": 1, "remark": {}}), "'remark' is a object"),
        (json_frame({"code": 1, "extFields": [1]}), "'extFields' is a array"),
        (json_frame({"code": 1, "extFields": "a=b"}), "'extFields' is a string"),
        (frame(b"{}", serialize_type=2), "unknown serialize type 2"),
    ],
)
def test_bad_frames_raise_protocol_error(data: bytes, match: str) -> None:
    err = decode_one_error(data)
    assert not isinstance(err, WrongProtocolError)
    assert match in str(err)


def test_frame_limit_is_configurable() -> None:
    data = json_frame({"code": 1}, body=b"x" * 100)
    assert decode_all(data, frame_bytes_max=len(data))[0].body == b"x" * 100
    assert "exceeds frame_bytes_max" in str(decode_one_error(data, frame_bytes_max=len(data) - 1))


def test_header_limit() -> None:
    data = json_frame({"code": 1, "remark": "r" * 200})
    assert "exceeds header_bytes_max" in str(decode_one_error(data, header_bytes_max=100))


def test_oversized_length_is_refused_before_the_body_arrives() -> None:
    dec = FrameDecoder()
    dec.feed(struct.pack(">i", 0x7FFFFFFF))
    with pytest.raises(ProtocolError):
        dec.next_command()


def test_decoder_stays_dead_after_an_error() -> None:
    dec = FrameDecoder()
    dec.feed(frame(b"[]"))
    with pytest.raises(ProtocolError):
        dec.next_command()
    with pytest.raises(ProtocolError):
        dec.next_command()
    with pytest.raises(ProtocolError):
        dec.feed(json_frame({"code": 1}))


def test_partial_frame_needs_more() -> None:
    data = json_frame({"code": 1}, b"body")
    dec = FrameDecoder()
    dec.feed(data[:-1])
    assert dec.next_command() is None
    assert dec.buffered_bytes == len(data) - 1
    dec.feed(data[-1:])
    cmd = dec.next_command()
    assert cmd is not None and cmd.body == b"body"
    assert dec.next_command() is None


# -- foreign protocols on the remoting port ----------------------------------------------------------------

TLS_CLIENT_HELLO = bytes.fromhex("16030100f5010000f10303") + b"\x00" * 40
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "protocol", "text"),
    [
        (HTTP2_PREFACE, "HTTP/2", "HTTP/2 preface on remoting port"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1", "HTTP/1 request on remoting port"),
        (b"POST /api HTTP/1.1\r\n", "HTTP/1", "HTTP/1 request on remoting port"),
        (b"OPTIONS * HTTP/1.1\r\n", "HTTP/1", "HTTP/1 request on remoting port"),
        (TLS_CLIENT_HELLO, "TLS", "TLS ClientHello on remoting port"),
    ],
)
def test_foreign_protocol_detected_whole_and_byte_by_byte(data: bytes, protocol: str, text: str) -> None:
    err = decode_one_error(data)
    assert isinstance(err, WrongProtocolError)
    assert err.protocol == protocol and str(err) == text
    dec = FrameDecoder()
    with pytest.raises(WrongProtocolError):
        for i in range(len(data)):
            dec.feed(data[i : i + 1])
            assert dec.next_command() is None


def test_foreign_detection_only_on_the_first_frame() -> None:
    err = decode_one_error(json_frame({"code": 1}) + b"GET / HTTP/1.1\r\n")
    assert not isinstance(err, WrongProtocolError)
    dec = FrameDecoder(detect_foreign_protocols=False)
    dec.feed(HTTP2_PREFACE)
    with pytest.raises(ProtocolError) as info:
        dec.next_command()
    assert not isinstance(info.value, WrongProtocolError)


# -- ROCKETMQ binary header ----------------------------------------------------------------------------------


def binary_header(
    code: int,
    language: int,
    version: int,
    opaque: int,
    flag: int,
    remark: str | None,
    ext: dict[str, str | None] | None,
) -> bytes:
    """Build a ROCKETMQ binary header from the layout in the reference (§1.4)."""
    out = struct.pack(">hbhii", code, language, version, opaque, flag)
    r = remark.encode() if remark is not None else b""
    out += struct.pack(">i", len(r)) + r
    m = b""
    for k, v in (ext or {}).items():
        kb, vb = k.encode(), (v or "").encode()
        m += struct.pack(">h", len(kb)) + kb + struct.pack(">i", len(vb)) + vb
    return out + struct.pack(">i", len(m)) + m


def test_binary_header_decodes() -> None:
    h = binary_header(11, LanguageCode.JAVA, 401, 77, 0, "hi", {"topic": "T", "queueId": "3", "nul": None})
    (cmd,) = decode_all(frame(h, b"BODY", serialize_type=1))
    assert (cmd.code, cmd.language, cmd.version, cmd.opaque, cmd.flag) == (11, "JAVA", 401, 77, 0)
    assert cmd.remark == "hi"
    assert cmd.ext_fields == {"topic": "T", "queueId": "3"}
    assert cmd.body == b"BODY"
    assert cmd.serialize_type == 1


def test_binary_header_without_remark_and_map() -> None:
    h = binary_header(105, LanguageCode.GO, 5, 1, 1, None, None)
    (cmd,) = decode_all(frame(h, serialize_type=1))
    assert cmd.remark is None and cmd.ext_fields == {} and cmd.language == "GO" and cmd.is_response


_short = st.integers(min_value=-(2**15), max_value=2**15 - 1)
_key = st.text(min_size=1, max_size=10)


@given(
    code=_short,
    language=st.sampled_from(list(LanguageCode)),
    version=_short,
    opaque=INT32,
    flag=INT32,
    remark=st.none() | st.text(min_size=1, max_size=30),
    ext=st.dictionaries(_key, st.text(min_size=1, max_size=20), max_size=6),
    body=st.binary(max_size=50),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_binary_header_property(
    code: int,
    language: LanguageCode,
    version: int,
    opaque: int,
    flag: int,
    remark: str | None,
    ext: dict[str, str],
    body: bytes,
    cuts: list[int],
) -> None:
    h = binary_header(code, language, version, opaque, flag, remark, dict(ext))
    (cmd,) = decode_all(frame(h, body, serialize_type=1), cuts)
    assert (cmd.code, cmd.language, cmd.version, cmd.opaque, cmd.flag) == (
        code,
        language.name,
        version,
        opaque,
        flag,
    )
    assert (cmd.remark, cmd.ext_fields, cmd.body) == (remark, ext, body)


def _bad_binary_headers() -> list[tuple[bytes, str]]:
    good = binary_header(1, 0, 1, 1, 0, "r", {"k": "v"})
    fixed = struct.pack(">hbhii", 1, 0, 1, 1, 0)
    return [
        (good[:10], "shorter than its fixed part"),
        (struct.pack(">hbhii", 1, 99, 1, 1, 0) + b"\x00" * 8, "unknown language code 99"),
        (fixed + struct.pack(">i", -1) + b"\x00" * 4, "negative remark length"),
        (fixed + struct.pack(">i", 50) + b"\x00" * 4, "runs past"),
        (fixed + struct.pack(">i", 0), "shorter than its fixed part"),
        (fixed + struct.pack(">i", 0) + struct.pack(">i", 100), "runs past the header end"),
        (fixed + struct.pack(">ii", 0, 3) + b"\x00\x05a", "runs past"),
        (fixed + struct.pack(">ii", 0, 2) + b"\xff\xff", "negative extFields key length"),
        (fixed + struct.pack(">ii", 0, 7) + b"\x00\x01k" + struct.pack(">i", 9), "runs past"),
        (fixed + struct.pack(">ii", 0, 5) + b"\x00\x01k\x00\x00", "truncated"),
    ]


@pytest.mark.parametrize(("header", "match"), _bad_binary_headers())
def test_bad_binary_headers(header: bytes, match: str) -> None:
    assert match in str(decode_one_error(frame(header, serialize_type=1)))


def test_binary_header_invalid_utf8_is_replaced_like_java() -> None:
    fixed = struct.pack(">hbhii", 1, 0, 1, 1, 0)
    h = fixed + struct.pack(">i", 2) + b"\xff\xfe" + struct.pack(">i", 0)
    (cmd,) = decode_all(frame(h, serialize_type=1))
    assert cmd.remark == "\ufffd\ufffd"


# -- golden vectors: frames captured from the real ali-ons client ------------------------------------------

ALIONS_PRODUCE = (
    Path(__file__).parents[2] / "compat" / "vectors" / "remoting" / "alions-3.12.0-produce-3.json"
)


def _captured(direction: str) -> list[tuple[bytes, dict[str, object]]]:
    frames = json.loads(ALIONS_PRODUCE.read_text())["frames"]
    return [(bytes.fromhex(f["hex"]), f["header"]) for f in frames if f["direction"] == direction]


def test_alions_captured_frames_decode_whole_and_byte_by_byte() -> None:
    requests = _captured("c2s")
    stream = b"".join(raw for raw, _ in requests)
    whole = decode_all(stream)
    one_by_one = decode_all(stream, list(range(len(stream))))
    assert [c.code for c in whole] == [105, 310, 310, 310, 35, 35]
    for cmd, other, (_, header) in zip(whole, one_by_one, requests, strict=True):
        assert_same(cmd, other)
        assert (cmd.language, cmd.version, cmd.flag, cmd.opaque) == ("JAVA", 121, 0, header["opaque"])
        assert cmd.serialize_type == 0
    assert whole[0].ext_fields == {"topic": "VectorTopic"}


def test_alions_captured_send_header_is_normalised_the_java_way() -> None:
    sends = [c for c in decode_all(b"".join(raw for raw, _ in _captured("c2s"))) if c.code == 310]
    for i, send in enumerate(sends):
        ext = send.ext_fields
        assert all(isinstance(v, str) for v in ext.values())
        assert (ext["a"], ext["b"], ext["c"], ext["d"], ext["f"], ext["h"], ext["j"], ext["k"]) == (
            "PG_VECTOR",
            "VectorTopic",
            "TBW102",
            "4",
            "0",
            "0",
            "0",
            "false",
        )
        assert ext["i"] == f"TAGS\x01TagA\x02KEYS\x01k{i}\x02"
        assert ext["e"] in {"0", "1", "2", "3"} and ext["g"].isdigit()
        assert send.body == f"msg-{i}".encode()


def test_alions_accepted_our_answers_which_decode_back() -> None:
    # Not golden (our own encoding), but ali-ons accepted each: check they still decode to what it saw.
    for raw, header in _captured("s2c"):
        assert raw[4] == 0  # serializeType JSON: ali-ons does not mask the header length
        (cmd,) = decode_all(raw)
        assert cmd.is_response and cmd.opaque == header["opaque"]
