"""Fuzzing the frame decoder: hostile bytes raise ProtocolError or nothing, and decoding always ends."""

from __future__ import annotations

import struct

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.frame import FrameDecoder, encode_command_bytes

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def drive(chunks: list[bytes], frame_bytes_max: int = 1 << 20) -> list[RemotingCommand]:
    """Feed the chunks, pulling commands until 'need more'. Every command consumes bytes, so the inner
    loop is bounded by the input size: a decoder that returned commands without progress fails here."""
    dec = FrameDecoder(frame_bytes_max=frame_bytes_max)
    out: list[RemotingCommand] = []
    total = sum(len(c) for c in chunks)
    try:
        for chunk in chunks:
            dec.feed(chunk)
            while True:
                before = dec.buffered_bytes
                cmd = dec.next_command()
                if cmd is None:
                    break
                assert dec.buffered_bytes <= before - 8, "a command must consume at least a frame prefix"
                out.append(cmd)
                assert len(out) <= total // 8
    except ProtocolError:
        pass  # the only exception allowed to escape
    return out


@given(st.lists(st.binary(max_size=200), max_size=10))
@FUZZ
def test_random_bytes(chunks: list[bytes]) -> None:
    drive(chunks)


def _prefixed(header: bytes, body: bytes, serialize_type: int) -> bytes:
    return (
        struct.pack(">iI", 4 + len(header) + len(body), (serialize_type << 24) | len(header)) + header + body
    )


@given(header=st.binary(max_size=120), body=st.binary(max_size=20), serialize_type=st.integers(0, 255))
@FUZZ
def test_well_framed_random_headers(header: bytes, body: bytes, serialize_type: int) -> None:
    """Valid framing around garbage headers reaches the JSON and binary header parsers."""
    drive([_prefixed(header, body, serialize_type)])


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
_header_objects = st.dictionaries(
    st.sampled_from(["code", "opaque", "flag", "version", "language", "remark", "extFields", "x"]),
    _json_values,
)


@given(obj=_header_objects | _json_values)
@FUZZ
def test_json_headers_of_any_shape(obj: object) -> None:
    try:
        header = orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits
        return
    for cmd in drive([_prefixed(header, b"", 0)]):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in cmd.ext_fields.items())
        assert isinstance(cmd.code, int) and isinstance(cmd.language, str)


@given(
    data=st.data(),
    code=st.integers(-(2**31), 2**31 - 1),
    body=st.binary(max_size=64),
)
@FUZZ
def test_mutated_valid_frames(data: st.DataObject, code: int, body: bytes) -> None:
    frame = bytearray(encode_command_bytes(RemotingCommand(code=code, ext_fields={"k": "v"}, body=body)))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    drive([bytes(frame[:cut]), bytes(frame[cut:])])
