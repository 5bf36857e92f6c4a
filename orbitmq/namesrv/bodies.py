"""NameServer request and response bodies (remoting-protocol.md sections 2.3 and 5), pure code over bytes.

Incoming bodies come from Java brokers and admin tools, so they are parsed with the tolerant
:func:`orbitmq.protocol.fastjson.loads`; outgoing bodies are standard JSON from orjson (quoted map keys,
which both ali-ons and the Java client accept). Every malformed input raises ``ProtocolError``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from orbitmq.core.errors import ProtocolError
from orbitmq.namesrv.routes import PERM_READ, PERM_WRITE, DataVersion, QueueData, TopicConfig
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import Version

__all__ = [
    "REGISTER_BODY_INFLATED_BYTES_MAX",
    "RegisterBrokerBody",
    "data_version_from_json",
    "decode_data_version",
    "decode_register_broker_body",
    "decode_topic_route_queue_datas",
    "encode_json",
    "encode_kv_table",
    "encode_register_broker_body",
    "encode_topic_list",
]

#: A compressed REGISTER_BROKER body may not inflate beyond this (a zip bomb must not take the NameServer).
REGISTER_BODY_INFLATED_BYTES_MAX: Final = 64 * 1024 * 1024

_INT = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class RegisterBrokerBody:
    data_version: DataVersion = field(default_factory=DataVersion)
    topic_configs: tuple[TopicConfig, ...] = ()
    filter_server_list: tuple[str, ...] = ()


# -- small helpers ---------------------------------------------------------------------------------------
def _int(obj: Mapping[str, Any], name: str, default: int) -> int:
    value = obj.get(name, default)
    if value is None:
        return default
    try:
        return int(value)  # fastjson accepts numbers written as strings; so do we
    except (TypeError, ValueError):
        raise ProtocolError(f"field {name!r} is not an integer: {str(value)[:40]!r}") from None


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{what} is not a JSON object")
    return value


def encode_json(value: Any) -> bytes:
    return orjson.dumps(value)


# -- DataVersion, TopicConfig ------------------------------------------------------------------------------
def data_version_from_json(value: Any) -> DataVersion:
    obj = _obj(value, "dataVersion")
    return DataVersion(
        state_version=_int(obj, "stateVersion", 0),
        timestamp=_int(obj, "timestamp", 0),
        counter=_int(obj, "counter", 0),
    )


def decode_data_version(body: bytes) -> DataVersion:
    """A DataVersion body (QUERY_DATA_VERSION); an empty body is version zero."""
    return data_version_from_json(fastjson.loads(body)) if body else DataVersion()


def _topic_config_from_json(key: Any, value: Any) -> TopicConfig:
    obj = _obj(value, f"topic config {str(key)[:60]!r}")
    name = obj.get("topicName") or key
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"topic config without a topic name: {str(key)[:60]!r}")
    return TopicConfig(
        topic_name=name,
        read_queue_nums=_int(obj, "readQueueNums", 16),
        write_queue_nums=_int(obj, "writeQueueNums", 16),
        perm=_int(obj, "perm", PERM_READ | PERM_WRITE),
        topic_sys_flag=_int(obj, "topicSysFlag", 0),
    )


def _wrapper_from_json(value: Any) -> tuple[DataVersion, tuple[TopicConfig, ...]]:
    """A TopicConfigSerializeWrapper: ``{"dataVersion":..., "topicConfigTable":{topic: TopicConfig}}``."""
    obj = _obj(value, "topicConfigSerializeWrapper")
    version = data_version_from_json(obj.get("dataVersion") or {})
    table = _obj(obj.get("topicConfigTable") or {}, "topicConfigTable")
    return version, tuple(_topic_config_from_json(k, v) for k, v in table.items())


def _topic_config_from_line(line: str) -> TopicConfig:
    """``TopicConfig.encode()``: ``"<topic> <read> <write> <perm> <filterType> <attributes-json>"``."""
    parts = line.split(" ")
    if len(parts) < 5 or not parts[0]:
        raise ProtocolError(f"bad topic config line: {line[:80]!r}")
    try:
        read, write, perm = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        raise ProtocolError(f"bad topic config line: {line[:80]!r}") from None
    # The line form carries no topicSysFlag: Java decodes it as 0 too.
    return TopicConfig(parts[0], read, write, perm)


# -- REGISTER_BROKER ---------------------------------------------------------------------------------------
def decode_register_broker_body(body: bytes, *, compressed: bool, broker_version: int) -> RegisterBrokerBody:
    """The body of REGISTER_BROKER (section 2.3): RegisterBrokerBody JSON, or its zlib-compressed form."""
    if not body:
        return RegisterBrokerBody()
    if compressed:
        return _decode_compressed(body, broker_version)
    doc = _obj(fastjson.loads(body), "REGISTER_BROKER body")
    if broker_version < Version.V3_0_11:
        # Brokers before 3.0.11 sent the TopicConfigSerializeWrapper itself.
        version, configs = _wrapper_from_json(doc)
        return RegisterBrokerBody(version, configs)
    version, configs = _wrapper_from_json(doc.get("topicConfigSerializeWrapper") or {})
    servers = doc.get("filterServerList") or []
    if not isinstance(servers, list):
        raise ProtocolError("filterServerList is not a JSON array")
    return RegisterBrokerBody(version, configs, tuple(str(s) for s in servers))


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self) -> int:
        if self.pos + 4 > len(self.data):
            raise ProtocolError("compressed REGISTER_BROKER body ends early")
        (value,) = _INT.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def chunk(self) -> bytes:
        n = self.int()
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError(f"compressed REGISTER_BROKER body: bad length {n}")
        self.pos += n
        return self.data[self.pos - n : self.pos]


def _inflate(body: bytes) -> bytes:
    d = zlib.decompressobj()
    try:
        data = d.decompress(body, REGISTER_BODY_INFLATED_BYTES_MAX)
    except zlib.error as exc:
        raise ProtocolError(f"compressed REGISTER_BROKER body does not inflate: {exc}") from None
    if d.unconsumed_tail:
        raise ProtocolError(
            f"compressed REGISTER_BROKER body inflates beyond {REGISTER_BODY_INFLATED_BYTES_MAX} bytes"
        )
    return data


def _decode_compressed(body: bytes, broker_version: int) -> RegisterBrokerBody:
    r = _Reader(_inflate(body))
    version = decode_data_version(r.chunk())
    count = r.int()
    if count < 0:
        raise ProtocolError(f"compressed REGISTER_BROKER body: bad topic count {count}")
    configs = []
    for _ in range(count):
        try:
            line = r.chunk().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("compressed REGISTER_BROKER body: topic config is not UTF-8") from None
        configs.append(_topic_config_from_line(line))
    servers = fastjson.loads(r.chunk())
    if servers is None:
        servers = []
    if not isinstance(servers, list):
        raise ProtocolError("compressed REGISTER_BROKER body: filter server list is not a JSON array")
    if broker_version >= Version.V5_0_0:
        # Static-topic mappings follow; the NameServer does not serve static topics, but they must parse.
        for _ in range(max(0, r.int())):
            fastjson.loads(r.chunk())
    return RegisterBrokerBody(version, tuple(configs), tuple(str(s) for s in servers))


def encode_register_broker_body(reg: RegisterBrokerBody, *, compressed: bool = False) -> bytes:
    """The body a broker sends (tests use it; it is the layout :func:`decode_register_broker_body` reads)."""
    if not compressed:
        return encode_json(
            {
                "filterServerList": list(reg.filter_server_list),
                "topicConfigSerializeWrapper": {
                    "dataVersion": reg.data_version.to_json(),
                    "topicConfigTable": {
                        tc.topic_name: {
                            "attributes": {},
                            "order": False,
                            "perm": tc.perm,
                            "readQueueNums": tc.read_queue_nums,
                            "topicFilterType": "SINGLE_TAG",
                            "topicName": tc.topic_name,
                            "topicSysFlag": tc.topic_sys_flag,
                            "writeQueueNums": tc.write_queue_nums,
                        }
                        for tc in reg.topic_configs
                    },
                },
            }
        )
    parts = [_chunk(encode_json(reg.data_version.to_json())), _INT.pack(len(reg.topic_configs))]
    for tc in reg.topic_configs:
        line = f"{tc.topic_name} {tc.read_queue_nums} {tc.write_queue_nums} {tc.perm} SINGLE_TAG {{}}"
        parts.append(_chunk(line.encode()))
    parts.append(_chunk(encode_json(list(reg.filter_server_list))))
    parts.append(_INT.pack(0))
    return zlib.compress(b"".join(parts), 9)


def _chunk(data: bytes) -> bytes:
    return _INT.pack(len(data)) + data


# -- other bodies -----------------------------------------------------------------------------------------
def decode_topic_route_queue_datas(body: bytes) -> list[QueueData]:
    """The ``queueDatas`` of a TopicRouteData body (REGISTER_TOPIC_IN_NAMESRV)."""
    if not body:
        return []
    doc = _obj(fastjson.loads(body), "TopicRouteData")
    items = doc.get("queueDatas") or []
    if not isinstance(items, list):
        raise ProtocolError("queueDatas is not a JSON array")
    out = []
    for item in items:
        o = _obj(item, "QueueData")
        name = o.get("brokerName")
        if not isinstance(name, str) or not name:
            raise ProtocolError("QueueData without a brokerName")
        out.append(
            QueueData(
                broker_name=name,
                read_queue_nums=_int(o, "readQueueNums", 0),
                write_queue_nums=_int(o, "writeQueueNums", 0),
                perm=_int(o, "perm", PERM_READ | PERM_WRITE),
                # 4.x Java spells it topicSynFlag.
                topic_sys_flag=_int(o, "topicSysFlag", _int(o, "topicSynFlag", 0)),
            )
        )
    return out


def encode_topic_list(topics: list[str], broker_addr: str | None = None) -> bytes:
    """TopicList: ``{"brokerAddr":S (optional), "topicList":[S]}``."""
    out: dict[str, Any] = {}
    if broker_addr is not None:
        out["brokerAddr"] = broker_addr
    out["topicList"] = topics
    return encode_json(out)


def encode_kv_table(table: Mapping[str, str]) -> bytes:
    """KVTable: ``{"table":{S:S}}``."""
    return encode_json({"table": dict(table)})
