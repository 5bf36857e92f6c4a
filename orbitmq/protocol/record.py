"""The message record: RocketMQ's stored message layout, used as the CommitLog record and the pull body.

One record, big-endian, field by field (IPv4 hosts; an IPv6 host takes 16+4 bytes instead of 4+4 and sets
its SYSFLAG bit)::

    offset size  field
    0      4     TOTALSIZE          whole record, this field included
    4      4     MAGICCODE          0xDAA320A7 (V1, 1-byte topic length) / 0xDAA320AB (V2, 2-byte)
    8      4     BODYCRC            crc32(body as stored) & 0x7FFFFFFF
    12     4     QUEUEID
    16     4     FLAG               user flag
    20     8     QUEUEOFFSET        index in the consume queue
    28     8     PHYSICALOFFSET     offset of this record in the CommitLog
    36     4     SYSFLAG            see SysFlag
    40     8     BORNTIMESTAMP
    48     8     BORNHOST           ip(4) + port(4)
    56     8     STORETIMESTAMP
    64     8     STOREHOST          ip(4) + port(4)
    72     4     RECONSUMETIMES
    76     8     PREPARED_TRANSACTION_OFFSET
    84     4+n   BODYLENGTH, BODY
    ..     1+n   TOPICLENGTH (V1) or 2+n (V2), TOPIC (UTF-8)
    ..     2+n   PROPERTIESLENGTH, PROPERTIES (``k\\x01v\\x02`` ...)

A CommitLog segment that cannot hold the next record ends with a blank: TOTALSIZE = the bytes left in the
segment and MAGICCODE = 0xCBD43194. Decoders read sequentially; every field is exactly sized.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from orbitmq.core.errors import ProtocolError
from orbitmq.core.limits import PROPERTIES_BYTES_MAX

__all__ = [
    "BLANK_MAGIC",
    "MAGIC_V1",
    "MAGIC_V2",
    "MessageRecord",
    "Prop",
    "RecordCheck",
    "SysFlag",
    "UniqueIdGenerator",
    "body_crc",
    "check_record",
    "decode_batch_body",
    "decode_offset_msg_id",
    "decode_properties",
    "decode_record",
    "decode_records",
    "encode_batch_body",
    "encode_properties",
    "encode_record",
    "iter_record_spans",
    "java_string_hash",
    "normalize_ipv4",
    "offset_msg_id",
    "patch_offsets",
    "properties_span",
    "record_properties",
    "record_size",
    "record_store_timestamp",
    "store_timestamp_pos",
    "tags_code",
    "verify_record_crc",
]

MAGIC_V1 = -626843481  # 0xDAA320A7 as a Java int
MAGIC_V2 = -626843477  # 0xDAA320AB
BLANK_MAGIC = -875286124  # 0xCBD43194

NAME_VALUE_SEPARATOR = "\x01"
PROPERTY_SEPARATOR = "\x02"

# Fields 1..14 with IPv4 hosts, then BODYLENGTH: the 88-byte fixed prefix.
_PREFIX = struct.Struct(">iiiiiqqiq4siq4siiqi")
PREFIX_SIZE = _PREFIX.size  # 88
_QUEUE_OFFSET_POS = 20
_PHYSICAL_OFFSET_POS = 28
_STORE_TIMESTAMP_POS = 56
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U16 = struct.Struct(">H")
_HEAD = struct.Struct(">ii")
_TAIL = struct.Struct(">iqi")


class SysFlag(enum.IntFlag):
    COMPRESSED = 0x1
    MULTI_TAGS = 0x2
    TRANSACTION_PREPARED = 0x4
    TRANSACTION_COMMIT = 0x8
    TRANSACTION_ROLLBACK = 0xC
    BORNHOST_V6 = 0x10
    STOREHOST_V6 = 0x20
    NEED_UNWRAP = 0x40
    INNER_BATCH = 0x80


TRANSACTION_MASK = 0xC
# Plain ints for the decoder's hot path (an IntFlag ``&`` goes through Python-level enum code).
_BORNHOST_V6 = int(SysFlag.BORNHOST_V6)
_STOREHOST_V6 = int(SysFlag.STOREHOST_V6)


class Prop:
    """Property names (RocketMQ ``MessageConst``)."""

    KEYS = "KEYS"
    TAGS = "TAGS"
    WAIT = "WAIT"
    DELAY = "DELAY"
    RETRY_TOPIC = "RETRY_TOPIC"
    REAL_TOPIC = "REAL_TOPIC"
    REAL_QID = "REAL_QID"
    TRAN_MSG = "TRAN_MSG"
    PGROUP = "PGROUP"
    MIN_OFFSET = "MIN_OFFSET"
    MAX_OFFSET = "MAX_OFFSET"
    ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
    RECONSUME_TIME = "RECONSUME_TIME"
    MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
    MSG_REGION = "MSG_REGION"
    TRACE_ON = "TRACE_ON"
    UNIQ_KEY = "UNIQ_KEY"
    CLUSTER = "CLUSTER"
    TRANSACTION_ID = "__transactionId__"
    TRANSACTION_CHECK_TIMES = "TRANSACTION_CHECK_TIMES"
    CHECK_IMMUNITY_TIME_IN_SECONDS = "CHECK_IMMUNITY_TIME_IN_SECONDS"
    TRAN_PREPARED_QUEUE_OFFSET = "TRAN_PREPARED_QUEUE_OFFSET"
    CONSUME_START_TIME = "CONSUME_START_TIME"
    POP_CK = "POP_CK"
    POP_CK_OFFSET = "POP_CK_OFFSET"
    FIRST_POP_TIME = "1ST_POP_TIME"
    SHARDING_KEY = "__SHARDINGKEY"
    TIMER_DELIVER_MS = "TIMER_DELIVER_MS"
    TIMER_DELAY_SEC = "TIMER_DELAY_SEC"
    TIMER_DELAY_MS = "TIMER_DELAY_MS"
    TIMER_OUT_MS = "TIMER_OUT_MS"
    DLQ_ORIGIN_TOPIC = "DLQ_ORIGIN_TOPIC"
    DLQ_ORIGIN_MESSAGE_ID = "DLQ_ORIGIN_MESSAGE_ID"
    BORN_HOST = "__BORNHOST"


# -- properties ------------------------------------------------------------------------------------------
def encode_properties(props: Mapping[str, str]) -> str:
    """``k\\x01v\\x02`` for every pair, a separator after the last too (as Java and ali-ons write it)."""
    return "".join(f"{k}{NAME_VALUE_SEPARATOR}{v}{PROPERTY_SEPARATOR}" for k, v in props.items())


def decode_properties(text: str) -> dict[str, str]:
    """Java's parser: chunks without a name/value separator (or shorter than 3 chars) are ignored."""
    out: dict[str, str] = {}
    if not text:
        return out
    for chunk in text.split(PROPERTY_SEPARATOR):
        if len(chunk) < 2:
            continue
        name, sep, value = chunk.partition(NAME_VALUE_SEPARATOR)
        if sep and name:
            out[name] = value
    return out


# -- hashes and hosts ------------------------------------------------------------------------------------
def java_string_hash(s: str) -> int:
    """Java's ``String.hashCode()`` (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    if s.isascii():
        for ch in s.encode("ascii"):
            h = (31 * h + ch) & 0xFFFFFFFF
    else:
        units = s.encode("utf-16-be")
        for i in range(0, len(units), 2):
            h = (31 * h + ((units[i] << 8) | units[i + 1])) & 0xFFFFFFFF
    return h - 0x1_0000_0000 if h & 0x8000_0000 else h


def tags_code(tags: str | None) -> int:
    """The consume-queue tag code of a message: the Java hash of its TAGS, 0 without tags."""
    return java_string_hash(tags) if tags else 0


def normalize_ipv4(host: str) -> str:
    """``::1`` → 127.0.0.1 and ``::ffff:a.b.c.d`` → a.b.c.d: record hosts must be IPv4 for ali-ons."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return "127.0.0.1"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return "127.0.0.1" if ip.is_loopback else str(ip)
    return str(ip)


@functools.lru_cache(maxsize=4096)
def _pack_host(host: str, port: int) -> tuple[bytes, bool]:
    # Cached: a broker sees few distinct hosts, and parsing an address costs more than encoding a record.
    ip = ipaddress.ip_address(host)
    return ip.packed + _I32.pack(port), isinstance(ip, ipaddress.IPv6Address)


@functools.lru_cache(maxsize=4096)
def _ip_text(raw: bytes) -> str:
    # Cached like _pack_host: formatting an address with ipaddress costs more than the rest of a decode.
    return str(ipaddress.IPv6Address(raw) if len(raw) == 16 else ipaddress.IPv4Address(raw))


def _unpack_host(buf: bytes | memoryview, pos: int, v6: bool) -> tuple[tuple[str, int], int]:
    n = 16 if v6 else 4
    ip = _ip_text(bytes(buf[pos : pos + n]))
    (port,) = _I32.unpack_from(buf, pos + n)
    return (ip, port), pos + n + 4


def body_crc(body: bytes | memoryview) -> int:
    return zlib.crc32(body) & 0x7FFFFFFF


# -- the record ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class MessageRecord:
    """A decoded stored message (RocketMQ's ``MessageExt``)."""

    topic: str
    body: bytes
    properties: dict[str, str] = field(default_factory=dict)
    queue_id: int = 0
    flag: int = 0
    queue_offset: int = 0
    physical_offset: int = 0
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: tuple[str, int] = ("127.0.0.1", 0)
    store_timestamp: int = 0
    store_host: tuple[str, int] = ("127.0.0.1", 0)
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0
    body_crc: int = 0
    store_size: int = 0

    @property
    def tags(self) -> str | None:
        return self.properties.get(Prop.TAGS)

    @property
    def keys(self) -> list[str]:
        return self.properties.get(Prop.KEYS, "").split()

    @property
    def uniq_key(self) -> str | None:
        return self.properties.get(Prop.UNIQ_KEY)

    @property
    def offset_msg_id(self) -> str:
        return offset_msg_id(self.store_host[0], self.store_host[1], self.physical_offset)

    @property
    def msg_id(self) -> str:
        """What clients call the message id: UNIQ_KEY when set, else the offset message id."""
        return self.uniq_key or self.offset_msg_id


def record_size(body_len: int, topic_len: int, props_len: int, *, v6_hosts: int = 0, v2: bool = False) -> int:
    return PREFIX_SIZE + 12 * v6_hosts + body_len + (2 if v2 else 1) + topic_len + 2 + props_len


_V6_FLAGS = int(SysFlag.BORNHOST_V6) | int(SysFlag.STOREHOST_V6)


def encode_record(
    *,
    topic: str,
    body: bytes | memoryview,
    properties: str | bytes | Mapping[str, str] = "",
    queue_id: int = 0,
    flag: int = 0,
    queue_offset: int = 0,
    physical_offset: int = 0,
    sys_flag: int = 0,
    born_timestamp: int = 0,
    born_host: tuple[str, int] = ("127.0.0.1", 0),
    store_timestamp: int = 0,
    store_host: tuple[str, int] = ("127.0.0.1", 0),
    reconsume_times: int = 0,
    prepared_transaction_offset: int = 0,
    crc: int | None = None,
) -> bytes:
    """Encode one record. V1 magic unless the topic needs two length bytes (only retry/DLQ topics may).

    ``properties`` may be given already encoded (bytes), as the store does to size a record before writing.
    """
    topic_b = topic.encode()
    if isinstance(properties, bytes):
        props_b = properties
    else:
        props_b = (properties if isinstance(properties, str) else encode_properties(properties)).encode()
    if len(props_b) > PROPERTIES_BYTES_MAX:
        raise ProtocolError(f"properties too long: {len(props_b)} > {PROPERTIES_BYTES_MAX} bytes")
    if len(topic_b) > 0x7FFF:
        raise ProtocolError(f"topic too long: {len(topic_b)} bytes")
    v2 = len(topic_b) > 127
    born_b, born_v6 = _pack_host(*born_host)
    store_b, store_v6 = _pack_host(*store_host)
    sys_flag = (sys_flag & ~_V6_FLAGS) | (0x10 if born_v6 else 0) | (0x20 if store_v6 else 0)
    total = (
        PREFIX_SIZE
        + 12 * (born_v6 + store_v6)
        + len(body)
        + (2 if v2 else 1)
        + len(topic_b)
        + 2
        + len(props_b)
    )
    head = struct.pack(
        ">iiiiiqqiq",
        total,
        MAGIC_V2 if v2 else MAGIC_V1,
        body_crc(body) if crc is None else crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
    )
    out = b"".join(
        (
            head,
            born_b,
            _I64.pack(store_timestamp),
            store_b,
            _TAIL.pack(reconsume_times, prepared_transaction_offset, len(body)),
            body,
            (_U16.pack(len(topic_b)) if v2 else bytes((len(topic_b),))),
            topic_b,
            _U16.pack(len(props_b)),
            props_b,
        )
    )
    assert len(out) == total
    return out


def store_timestamp_pos(sys_flag: int) -> int:
    return _STORE_TIMESTAMP_POS + (12 if sys_flag & SysFlag.BORNHOST_V6 else 0)


def patch_offsets(buf: bytearray | memoryview, pos: int, queue_offset: int, physical_offset: int) -> None:
    """Write QUEUEOFFSET and PHYSICALOFFSET into an encoded record at ``pos`` (assigned at append time)."""
    _I64.pack_into(buf, pos + _QUEUE_OFFSET_POS, queue_offset)
    _I64.pack_into(buf, pos + _PHYSICAL_OFFSET_POS, physical_offset)


def decode_record(
    buf: bytes | bytearray | memoryview, pos: int = 0, *, with_body: bool = True
) -> MessageRecord:
    """Decode the record at ``pos``; raises :class:`ProtocolError` if it is not a whole, valid record."""
    view = memoryview(buf)
    try:
        total, magic = _HEAD.unpack_from(view, pos)
        if magic not in (MAGIC_V1, MAGIC_V2):
            raise ProtocolError(f"bad magic code {magic & 0xFFFFFFFF:#x} at {pos}")
        if total < PREFIX_SIZE or pos + total > len(view):
            raise ProtocolError(f"record size {total} at {pos} runs past the buffer")
        (crc, queue_id, flag, queue_offset, physical_offset, sys_flag, born_ts) = struct.unpack_from(
            ">iiiqqiq", view, pos + 8
        )
        p = pos + 48
        born_host, p = _unpack_host(view, p, bool(sys_flag & _BORNHOST_V6))
        (store_ts,) = _I64.unpack_from(view, p)
        store_host, p = _unpack_host(view, p + 8, bool(sys_flag & _STOREHOST_V6))
        reconsume, prepared, body_len = struct.unpack_from(">iqi", view, p)
        p += 16
        if body_len < 0 or p + body_len > pos + total:
            raise ProtocolError(f"body length {body_len} at {pos} runs past the record")
        body = bytes(view[p : p + body_len]) if with_body else b""
        p += body_len
        if magic == MAGIC_V2:
            (topic_len,) = _U16.unpack_from(view, p)
            p += 2
        else:
            topic_len = view[p]
            p += 1
        topic = bytes(view[p : p + topic_len]).decode()
        p += topic_len
        (props_len,) = _U16.unpack_from(view, p)
        p += 2
        props = decode_properties(bytes(view[p : p + props_len]).decode())
        p += props_len
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"truncated or malformed record at {pos}: {exc}") from exc
    if p - pos != total:
        raise ProtocolError(f"record at {pos} declares {total} bytes but its fields take {p - pos}")
    return MessageRecord(
        topic=topic,
        body=body,
        properties=props,
        queue_id=queue_id,
        flag=flag,
        queue_offset=queue_offset,
        physical_offset=physical_offset,
        sys_flag=sys_flag,
        born_timestamp=born_ts,
        born_host=born_host,
        store_timestamp=store_ts,
        store_host=store_host,
        reconsume_times=reconsume,
        prepared_transaction_offset=prepared,
        body_crc=crc,
        store_size=total,
    )


def decode_records(buf: bytes | bytearray | memoryview) -> list[MessageRecord]:
    """Decode a pull/pop body: records back to back. A malformed record raises (it is never skipped)."""
    out: list[MessageRecord] = []
    pos = 0
    n = len(buf)
    while pos < n:
        rec = decode_record(buf, pos)
        out.append(rec)
        pos += rec.store_size
    return out


class RecordCheck(enum.Enum):
    VALID = "valid"
    BLANK = "blank"  # end-of-segment filler: continue in the next segment
    INVALID = "invalid"  # torn, corrupt or zero: the log ends here


def check_record(buf: bytes | bytearray | memoryview, pos: int, limit: int) -> tuple[RecordCheck, int]:
    """Validate the record at ``pos`` for recovery: size, magic, structure and body CRC.

    Returns ``(VALID, size)``, ``(BLANK, size)`` or ``(INVALID, 0)``. ``limit`` is the end of valid bytes.
    """
    if pos + 8 > limit:
        return RecordCheck.INVALID, 0
    total, magic = _HEAD.unpack_from(buf, pos)
    if magic == BLANK_MAGIC and total > 0 and pos + total <= limit:
        return RecordCheck.BLANK, total
    if magic not in (MAGIC_V1, MAGIC_V2) or total < PREFIX_SIZE or pos + total > limit:
        return RecordCheck.INVALID, 0
    try:
        rec = decode_record(memoryview(buf)[: pos + total], pos)
    except ProtocolError:
        return RecordCheck.INVALID, 0
    if body_crc(rec.body) != rec.body_crc:
        return RecordCheck.INVALID, 0
    return RecordCheck.VALID, total


def iter_record_spans(buf: memoryview) -> Iterator[tuple[int, int]]:
    """``(pos, size)`` of each record in a buffer of whole records (no validation beyond TOTALSIZE)."""
    pos = 0
    while pos + 4 <= len(buf):
        (size,) = _I32.unpack_from(buf, pos)
        if size <= 0 or pos + size > len(buf):
            return
        yield pos, size
        pos += size


# -- message ids -----------------------------------------------------------------------------------------
def offset_msg_id(host: str, port: int, physical_offset: int) -> str:
    """The broker's message id: hex of store host ip, port and physical offset (32 chars for IPv4)."""
    packed, _ = _pack_host(host, port)
    return (packed + _I64.pack(physical_offset)).hex().upper()


def decode_offset_msg_id(msg_id: str) -> tuple[str, int, int]:
    """``(host, port, physical offset)`` from an offset message id."""
    try:
        raw = bytes.fromhex(msg_id)
    except ValueError:
        raise ProtocolError(f"not an offset message id: {msg_id[:64]!r}") from None
    if len(raw) == 16:
        ip = str(ipaddress.IPv4Address(raw[:4]))
        rest = raw[4:]
    elif len(raw) == 28:
        ip = str(ipaddress.IPv6Address(raw[:16]))
        rest = raw[16:]
    else:
        raise ProtocolError(f"offset message id has {len(raw)} bytes, expected 16 or 28")
    (port,) = _I32.unpack_from(rest, 0)
    (offset,) = _I64.unpack_from(rest, 4)
    return ip, port, offset


class UniqueIdGenerator:
    """Client message ids (``UNIQ_KEY``): ip(4) + pid(2) + instance hash(4) + ms since month start(4)
    + counter(2), uppercase hex, as the Java client's ``MessageClientIDSetter``."""

    def __init__(self, ip: str = "127.0.0.1", instance_hash: int | None = None) -> None:
        ip4 = normalize_ipv4(ip)
        seed = instance_hash if instance_hash is not None else id(self)
        fixed = ipaddress.IPv4Address(ip4).packed + struct.pack(
            ">HI", os.getpid() & 0xFFFF, seed & 0xFFFFFFFF
        )
        self._prefix = fixed.hex().upper()
        self._counter = 0
        self._lock = threading.Lock()
        self._set_month_start(time.time())

    def _set_month_start(self, now: float) -> None:
        t = time.localtime(now)
        start = time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))
        self._month_start_ms = int(start * 1000)
        nxt = (t.tm_year + (t.tm_mon == 12), t.tm_mon % 12 + 1, 1, 0, 0, 0, 0, 0, -1)
        self._next_month_ms = int(time.mktime(nxt) * 1000)

    def next_id(self) -> str:
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            if now_ms >= self._next_month_ms:
                self._set_month_start(now_ms / 1000)
            self._counter = (self._counter + 1) & 0xFFFF
            counter = self._counter
        delta = (now_ms - self._month_start_ms) & 0xFFFFFFFF
        return self._prefix + struct.pack(">IH", delta, counter).hex().upper()


# -- SEND_BATCH_MESSAGE body -----------------------------------------------------------------------------
def encode_batch_body(messages: list[tuple[int, bytes, Mapping[str, str]]]) -> bytes:
    """``(flag, body, properties)`` per inner message, as ``MessageDecoder.encodeMessages``."""
    parts: list[bytes] = []
    for flag, body, props in messages:
        props_b = encode_properties(props).encode()
        total = 20 + len(body) + 2 + len(props_b)
        parts.append(
            struct.pack(">iiiii", total, 0, 0, flag, len(body)) + body + _U16.pack(len(props_b)) + props_b
        )
    return b"".join(parts)


def decode_batch_body(buf: bytes | memoryview) -> list[tuple[int, bytes, dict[str, str]]]:
    out: list[tuple[int, bytes, dict[str, str]]] = []
    view = memoryview(buf)
    pos = 0
    try:
        while pos < len(view):
            total, _magic, _crc, flag, body_len = struct.unpack_from(">iiiii", view, pos)
            if total < 22 or pos + total > len(view) or body_len < 0 or 20 + body_len + 2 > total:
                raise ProtocolError(f"bad batch entry at {pos}: size {total}, body {body_len}")
            body = bytes(view[pos + 20 : pos + 20 + body_len])
            p = pos + 20 + body_len
            (props_len,) = _U16.unpack_from(view, p)
            if p + 2 + props_len != pos + total:
                raise ProtocolError(f"bad batch entry at {pos}: properties overrun")
            props = decode_properties(bytes(view[p + 2 : p + 2 + props_len]).decode())
            out.append((flag, body, props))
            pos += total
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed batch body at {pos}: {exc}") from exc
    return out


# -- read-side checks on raw record bytes (no full decode) -----------------------------------------------
def _body_pos(view: memoryview) -> int:
    (sys_flag,) = _I32.unpack_from(view, 36)
    return 84 + (12 if sys_flag & SysFlag.BORNHOST_V6 else 0) + (12 if sys_flag & SysFlag.STOREHOST_V6 else 0)


def verify_record_crc(view: memoryview) -> bool:
    """True if the body CRC stored in the record matches its body: reads check what recovery checked."""
    try:
        pos = _body_pos(view)
        (body_len,) = _I32.unpack_from(view, pos)
        if body_len < 0 or pos + 4 + body_len > len(view):
            return False
        (stored,) = _I32.unpack_from(view, 8)
        return body_crc(view[pos + 4 : pos + 4 + body_len]) == int(stored)
    except struct.error:
        return False


def properties_span(view: memoryview) -> tuple[int, int]:
    """``(start, length)`` of the properties text inside a raw record."""
    try:
        pos = _body_pos(view)
        (body_len,) = _I32.unpack_from(view, pos)
        pos += 4 + body_len
        (magic,) = _I32.unpack_from(view, 4)
        if magic == MAGIC_V2:
            (topic_len,) = _U16.unpack_from(view, pos)
            pos += 2 + topic_len
        else:
            pos += 1 + view[pos]
        (props_len,) = _U16.unpack_from(view, pos)
    except (struct.error, IndexError) as exc:
        raise ProtocolError(f"malformed record properties: {exc}") from exc
    return pos + 2, int(props_len)


def record_properties(view: memoryview) -> dict[str, str]:
    """The properties of a raw record, without decoding the rest (for record-level filters)."""
    start, length = properties_span(view)
    try:
        return decode_properties(bytes(view[start : start + length]).decode())
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"malformed record properties: {exc}") from exc


def record_store_timestamp(view: memoryview) -> int:
    (sys_flag,) = _I32.unpack_from(view, 36)
    (ts,) = _I64.unpack_from(view, store_timestamp_pos(sys_flag))
    return int(ts)
