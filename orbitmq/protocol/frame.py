"""The remoting frame codec, sans-IO (in the style of h11).

Layout (all integers big-endian)::

    0      4   totalLength = 4 + headerLength + bodyLength   (the 4 length bytes themselves not included)
    4      4   (serializeType << 24) | headerLength          0 = JSON, 1 = ROCKETMQ binary
    8      H   header
    8+H    ..  body

:class:`FrameDecoder` is fed bytes as they arrive and hands out whole :class:`RemotingCommand` objects;
feeding everything at once or one byte at a time gives the same commands, and the only exception that
escapes is :class:`ProtocolError`. The encoder always writes JSON headers (serializeType byte 0): ali-ons
reads the header-length int without masking the type byte, so anything else breaks it.
"""

from __future__ import annotations

import struct
from decimal import Decimal

import orjson

from orbitmq.core.errors import ProtocolError
from orbitmq.core.limits import FRAME_BYTES_MAX, HEADER_BYTES_MAX
from orbitmq.protocol.codes import LanguageCode
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "SERIALIZE_JSON",
    "SERIALIZE_ROCKETMQ",
    "FrameDecoder",
    "WrongProtocolError",
    "encode_command",
    "encode_command_bytes",
    "java_text",
]

SERIALIZE_JSON = 0
SERIALIZE_ROCKETMQ = 1

_I32 = struct.Struct(">i")
_PREFIX = struct.Struct(">iI")
#: code (short), language (byte), version (short), opaque (int), flag (int) of the binary header.
_BIN_FIXED = struct.Struct(">hbhii")
_I16 = struct.Struct(">h")
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
#: The header length shares its int with the serialize type: 24 bits.
_HEADER_LENGTH_FIELD_MAX = 0xFFFFFF
#: Java prints a double in plain notation only inside [1e-3, 1e7).
_JAVA_PLAIN_MIN = 1e-3
_JAVA_PLAIN_MAX = 1e7

#: First four bytes of protocols that are not remoting, as a client mistakenly sends them to the port.
#: Four bytes are all a frame decoder reads before deciding anything, so the verdict cannot depend on how
#: the input was chunked.
_HTTP1_METHOD_PREFIXES = (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC")


class WrongProtocolError(ProtocolError):
    """The peer speaks another protocol (HTTP/1, HTTP/2, TLS) on the remoting port.

    ``protocol`` names what was recognised, so the server can log a useful line and close.
    """

    def __init__(self, protocol: str) -> None:
        what = "preface" if protocol == "HTTP/2" else "request" if protocol == "HTTP/1" else "ClientHello"
        super().__init__(f"{protocol} {what} on remoting port")
        self.protocol = protocol


def _sniff_foreign(first4: bytes) -> str | None:
    if first4[0] == 0x16 and first4[1] == 0x03:
        return "TLS"  # TLS handshake record, version 3.x
    if first4 == b"PRI ":
        return "HTTP/2"
    if first4 in _HTTP1_METHOD_PREFIXES:
        return "HTTP/1"
    return None


class FrameDecoder:
    """Incremental decoder for one connection's inbound byte stream.

    After a :class:`ProtocolError` the decoder is dead: every later call raises the same error, because
    the stream has lost its framing and the connection must be closed.
    """

    def __init__(
        self,
        frame_bytes_max: int = FRAME_BYTES_MAX,
        header_bytes_max: int = HEADER_BYTES_MAX,
        *,
        detect_foreign_protocols: bool = True,
    ) -> None:
        self.frame_bytes_max = frame_bytes_max
        self.header_bytes_max = header_bytes_max
        self._buf = bytearray()
        self._pos = 0
        self._sniff = detect_foreign_protocols
        self._error: ProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a command (a partial frame, or frames not yet asked for)."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self._buf += data

    def next_command(self) -> RemotingCommand | None:
        """The next whole command, or None when more bytes are needed."""
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except ProtocolError as exc:
            self._error = exc
            raise

    def _next(self) -> RemotingCommand | None:
        buf, pos = self._buf, self._pos
        available = len(buf) - pos
        if available < 4:
            return None
        if self._sniff:
            protocol = _sniff_foreign(bytes(buf[pos : pos + 4]))
            if protocol is not None:
                raise WrongProtocolError(protocol)
        (total,) = _I32.unpack_from(buf, pos)
        if total < 4:
            raise ProtocolError(f"frame length {total} is smaller than the 4-byte header length field")
        if total + 4 > self.frame_bytes_max:
            raise ProtocolError(f"frame length {total} exceeds frame_bytes_max {self.frame_bytes_max}")
        if available < 4 + total:
            return None
        (_, type_and_len) = _PREFIX.unpack_from(buf, pos)
        serialize_type = type_and_len >> 24
        header_len = type_and_len & _HEADER_LENGTH_FIELD_MAX
        if header_len > total - 4:
            raise ProtocolError(f"header length {header_len} exceeds frame length {total}")
        if header_len > self.header_bytes_max:
            raise ProtocolError(
                f"header length {header_len} exceeds header_bytes_max {self.header_bytes_max}"
            )
        start = pos + 8
        header = memoryview(buf)[start : start + header_len]
        try:
            if serialize_type == SERIALIZE_JSON:
                cmd = _decode_json_header(header)
            elif serialize_type == SERIALIZE_ROCKETMQ:
                cmd = _decode_binary_header(header)
            else:
                raise ProtocolError(f"unknown serialize type {serialize_type}")
        finally:
            header.release()  # a live view would forbid resizing the buffer
        cmd.serialize_type = serialize_type
        cmd.body = bytes(buf[start + header_len : pos + 4 + total])
        self._sniff = False  # only the first bytes of a connection can be a foreign preface
        self._consume(4 + total)
        return cmd

    def _consume(self, n: int) -> None:
        self._pos += n
        # Compact lazily so a burst of small pipelined frames does not shift the buffer once per frame.
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0


# -- JSON header ---------------------------------------------------------------------------------------


def _decode_json_header(header: memoryview) -> RemotingCommand:
    try:
        obj = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON header: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"JSON header is a {_json_type(obj)}, not an object")
    code = _int_member(obj, "code", None)
    language = obj.get("language", "JAVA")
    if not isinstance(language, str):
        raise ProtocolError(f"header field 'language' is a {_json_type(language)}, not a string")
    remark = obj.get("remark")
    if remark is not None and not isinstance(remark, str):
        raise ProtocolError(f"header field 'remark' is a {_json_type(remark)}, not a string")
    ext = obj.get("extFields")
    if ext is not None and not isinstance(ext, dict):
        raise ProtocolError(f"header field 'extFields' is a {_json_type(ext)}, not an object")
    return RemotingCommand(
        code=code,
        opaque=_int_member(obj, "opaque", 0),
        flag=_int_member(obj, "flag", 0),
        language=language,
        version=_int_member(obj, "version", 0),
        remark=remark,
        ext_fields={k: java_text(v) for k, v in ext.items() if v is not None} if ext else {},
    )


def _int_member(obj: dict[str, object], name: str, default: int | None) -> int:
    value = obj.get(name)
    if value is None:
        if default is None:
            raise ProtocolError(f"header field {name!r} is missing")
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"header field {name!r} is a {_json_type(value)}, not an integer")
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ProtocolError(f"header field {name!r} = {value} does not fit a 32-bit int")
    return value


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def java_text(value: object) -> str:
    """An extFields value as the string Java would hold: what ali-ons sends as JSON numbers and booleans
    arrives in a Java ``Map<String, String>`` as ``"4"`` / ``"true"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    return orjson.dumps(value).decode()


def _java_double(x: float) -> str:
    """``Double.toString``: plain notation inside [1e-3, 1e7), else ``d.dddE±n``; always a fraction digit."""
    if x != x or x in (float("inf"), float("-inf")):
        return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")
    if x == 0 or _JAVA_PLAIN_MIN <= abs(x) < _JAVA_PLAIN_MAX:
        return repr(x)  # Python's repr is plain, shortest and has a fraction digit throughout this range
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exponent, int)
    ds = "".join(map(str, digits))
    sci_exponent = exponent + len(ds) - 1
    mantissa = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + f"{mantissa}E{sci_exponent}"


# -- ROCKETMQ binary header ----------------------------------------------------------------------------


def _decode_binary_header(h: memoryview) -> RemotingCommand:
    n = len(h)
    if n < _BIN_FIXED.size + 8:
        raise ProtocolError(f"binary header of {n} bytes is shorter than its fixed part")
    code, lang, version, opaque, flag = _BIN_FIXED.unpack_from(h, 0)
    try:
        language = LanguageCode(lang).name
    except ValueError:
        raise ProtocolError(f"unknown language code {lang} in binary header") from None
    pos = _BIN_FIXED.size
    remark_len = _read_len(h, pos, _I32, "remark")
    pos += 4
    remark = _read_text(h, pos, remark_len, "remark") if remark_len else None
    pos += remark_len
    if pos + 4 > n:
        raise ProtocolError("binary header truncated before extFields length")
    ext_len = _read_len(h, pos, _I32, "extFields")
    pos += 4
    end = pos + ext_len
    if end > n:
        raise ProtocolError(f"extFields length {ext_len} runs past the header end")
    ext: dict[str, str] = {}
    while pos < end:
        key_len = _read_len(h, pos, _I16, "extFields key", end)
        pos += 2
        key = _read_text(h, pos, key_len, "extFields key", end)
        pos += key_len
        val_len = _read_len(h, pos, _I32, "extFields value", end)
        pos += 4
        value = _read_text(h, pos, val_len, "extFields value", end)
        pos += val_len
        if val_len:  # a zero length is Java's null: dropped, like a JSON null
            ext[key] = value
    return RemotingCommand(
        code=code, opaque=opaque, flag=flag, language=language, version=version, remark=remark, ext_fields=ext
    )


def _read_len(h: memoryview, pos: int, fmt: struct.Struct, what: str, end: int | None = None) -> int:
    limit = len(h) if end is None else end
    if pos + fmt.size > limit:
        raise ProtocolError(f"binary header truncated in {what} length")
    (length,) = fmt.unpack_from(h, pos)
    if length < 0:
        raise ProtocolError(f"negative {what} length {length}")
    return int(length)


def _read_text(h: memoryview, pos: int, length: int, what: str, end: int | None = None) -> str:
    limit = len(h) if end is None else end
    if pos + length > limit:
        raise ProtocolError(f"{what} of {length} bytes runs past the header end")
    # Java decodes with replacement characters rather than failing; do the same.
    return bytes(h[pos : pos + length]).decode("utf-8", "replace")


# -- encoding ------------------------------------------------------------------------------------------


def _nbytes(part: bytes | bytearray | memoryview) -> int:
    return part.nbytes if isinstance(part, memoryview) else len(part)


def encode_command(
    cmd: RemotingCommand, *, frame_bytes_max: int = FRAME_BYTES_MAX
) -> list[bytes | memoryview]:
    """Buffers to write back to back (``transport.writelines``): the frame prefix and JSON header as one
    buffer, then the body parts untouched (a pull answer's slices of the log are never joined)."""
    header: dict[str, object] = {
        "code": cmd.code,
        "language": cmd.language,
        "version": cmd.version,
        "opaque": cmd.opaque,
        "flag": cmd.flag,
    }
    if cmd.remark is not None:
        header["remark"] = cmd.remark
    ext = cmd.ext_fields
    # Handlers should put strings; a stray int or bool still goes out the way Java would print it.
    header["extFields"] = (
        ext if all(type(v) is str for v in ext.values()) else {k: java_text(v) for k, v in ext.items()}
    )
    header["serializeTypeCurrentRPC"] = "JSON"
    try:
        header_bytes = orjson.dumps(header)
    except TypeError as exc:
        raise ProtocolError(f"cannot encode header of code {cmd.code}: {exc}") from None
    if len(header_bytes) > _HEADER_LENGTH_FIELD_MAX:
        raise ProtocolError(f"encoded header of {len(header_bytes)} bytes does not fit 24 bits")

    body = cmd.body
    parts: list[bytes | memoryview]
    if isinstance(body, bytes | bytearray | memoryview):
        parts = [body if not isinstance(body, bytearray) else bytes(body)] if _nbytes(body) else []
    else:
        parts = [p if not isinstance(p, bytearray) else bytes(p) for p in body if _nbytes(p)]
    body_len = sum(_nbytes(p) for p in parts)
    total = 4 + len(header_bytes) + body_len
    if total + 4 > frame_bytes_max:
        raise ProtocolError(f"frame of {total + 4} bytes for code {cmd.code} exceeds {frame_bytes_max}")
    head = _PREFIX.pack(total, len(header_bytes)) + header_bytes
    return [head, *parts]


def encode_command_bytes(cmd: RemotingCommand, *, frame_bytes_max: int = FRAME_BYTES_MAX) -> bytes:
    """The whole frame as one bytes object (tests, small frames)."""
    return b"".join(encode_command(cmd, frame_bytes_max=frame_bytes_max))
