"""Client-side value types: message queues, outgoing messages, received messages, send results."""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass, field

from orbitmq.protocol.record import MessageRecord, Prop, SysFlag

__all__ = [
    "ConsumeFromWhere",
    "Message",
    "MessageExt",
    "MessageModel",
    "MessageQueue",
    "SendResult",
    "SendStatus",
    "message_ext_from_record",
]

RETRY_PREFIX = "%RETRY%"
DLQ_PREFIX = "%DLQ%"


@dataclass(frozen=True, slots=True, order=True)
class MessageQueue:
    """One queue of a topic on one broker. Ordering is RocketMQ's: (topic, brokerName, queueId)."""

    topic: str
    broker_name: str
    queue_id: int

    def __str__(self) -> str:
        # Java's MessageQueue.toString(): the consistent-hash strategy hashes exactly this text.
        return f"MessageQueue [topic={self.topic}, brokerName={self.broker_name}, queueId={self.queue_id}]"

    def to_json(self) -> dict[str, object]:
        return {"topic": self.topic, "brokerName": self.broker_name, "queueId": self.queue_id}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> MessageQueue:
        return cls(str(obj["topic"]), str(obj["brokerName"]), int(str(obj["queueId"])))


class MessageModel(enum.Enum):
    CLUSTERING = "CLUSTERING"
    BROADCASTING = "BROADCASTING"


class ConsumeFromWhere(enum.Enum):
    CONSUME_FROM_LAST_OFFSET = "CONSUME_FROM_LAST_OFFSET"
    CONSUME_FROM_FIRST_OFFSET = "CONSUME_FROM_FIRST_OFFSET"
    CONSUME_FROM_TIMESTAMP = "CONSUME_FROM_TIMESTAMP"


@dataclass(slots=True)
class Message:
    """A message to send. ``keys`` are space-joined into the KEYS property, as every RocketMQ client does."""

    topic: str
    body: bytes
    tags: str | None = None
    keys: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    delay_level: int = 0
    flag: int = 0

    def wire_properties(self) -> dict[str, str]:
        props = dict(self.properties)
        if self.tags:
            props[Prop.TAGS] = self.tags
        if self.keys:
            props[Prop.KEYS] = " ".join(self.keys)
        if self.delay_level > 0:
            props[Prop.DELAY] = str(self.delay_level)
        return props


class SendStatus(enum.Enum):
    SEND_OK = 0
    FLUSH_DISK_TIMEOUT = 10
    SLAVE_NOT_AVAILABLE = 11
    FLUSH_SLAVE_TIMEOUT = 12


@dataclass(frozen=True, slots=True)
class SendResult:
    """``msg_id`` is the client-set UNIQ_KEY (comma-joined for a batch), ``offset_msg_id`` the broker's."""

    status: SendStatus
    msg_id: str
    offset_msg_id: str
    queue: MessageQueue
    queue_offset: int


@dataclass(slots=True)
class MessageExt:
    """A received message: the decoded record plus where it came from.

    ``topic`` is the record's topic except for retry deliveries, where it is reset to RETRY_TOPIC (the
    topic the message was first sent to), as the Java client does before calling the listener.
    """

    topic: str
    body: bytes
    properties: dict[str, str]
    msg_id: str
    offset_msg_id: str
    broker_name: str
    queue_id: int
    queue_offset: int
    commit_log_offset: int
    reconsume_times: int
    born_timestamp: int
    store_timestamp: int
    record_topic: str

    @property
    def tags(self) -> str | None:
        return self.properties.get(Prop.TAGS)

    @property
    def keys(self) -> list[str]:
        return self.properties.get(Prop.KEYS, "").split()


def message_ext_from_record(rec: MessageRecord, broker_name: str) -> MessageExt:
    body = rec.body
    if rec.sys_flag & SysFlag.COMPRESSED:
        body = zlib.decompress(body)
    topic = rec.topic
    if topic.startswith(RETRY_PREFIX) and Prop.RETRY_TOPIC in rec.properties:
        topic = rec.properties[Prop.RETRY_TOPIC]
    return MessageExt(
        topic=topic,
        body=body,
        properties=rec.properties,
        msg_id=rec.msg_id,
        offset_msg_id=rec.offset_msg_id,
        broker_name=broker_name,
        queue_id=rec.queue_id,
        queue_offset=rec.queue_offset,
        commit_log_offset=rec.physical_offset,
        reconsume_times=rec.reconsume_times,
        born_timestamp=rec.born_timestamp,
        store_timestamp=rec.store_timestamp,
        record_topic=rec.topic,
    )
