"""The HEART_BEAT body as the broker reads it (RocketMQ ``HeartbeatData``, ``ConsumerData``; remoting-protocol
§5.3): the consumer enums and a strict parser that turns a malformed body into a :class:`ProtocolError`.

Pure data: :mod:`orbitmq.broker.groups` registers what a heartbeat carries, the clients handler decodes it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orbitmq.broker.filters import SubscriptionData
from orbitmq.core.errors import ProtocolError
from orbitmq.protocol import fastjson

__all__ = [
    "ConsumeFromWhere",
    "ConsumeType",
    "ConsumerData",
    "HeartbeatData",
    "MessageModel",
]


class ConsumeType(enum.Enum):
    CONSUME_ACTIVELY = "CONSUME_ACTIVELY"  # pull / lite pull
    CONSUME_PASSIVELY = "CONSUME_PASSIVELY"  # push
    CONSUME_POP = "CONSUME_POP"


class MessageModel(enum.Enum):
    BROADCASTING = "BROADCASTING"
    CLUSTERING = "CLUSTERING"


class ConsumeFromWhere(enum.Enum):
    CONSUME_FROM_LAST_OFFSET = "CONSUME_FROM_LAST_OFFSET"
    CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST = (
        "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST"
    )
    CONSUME_FROM_MIN_OFFSET = "CONSUME_FROM_MIN_OFFSET"
    CONSUME_FROM_MAX_OFFSET = "CONSUME_FROM_MAX_OFFSET"
    CONSUME_FROM_FIRST_OFFSET = "CONSUME_FROM_FIRST_OFFSET"
    CONSUME_FROM_TIMESTAMP = "CONSUME_FROM_TIMESTAMP"


# -- heartbeat body -----------------------------------------------------------------------------------------
def _enum_field(obj: Mapping[str, Any], key: str, kind: type[enum.Enum], default: enum.Enum) -> Any:
    raw = obj.get(key)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ProtocolError(f"heartbeat: unknown {key} {raw!r}") from None


@dataclass(frozen=True, slots=True)
class ConsumerData:
    """One consumer group of a HEART_BEAT body (remoting-protocol §5.3)."""

    group_name: str  # groupName
    consume_type: ConsumeType = ConsumeType.CONSUME_PASSIVELY  # consumeType
    message_model: MessageModel = MessageModel.CLUSTERING  # messageModel
    consume_from_where: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET  # consumeFromWhere
    subscriptions: tuple[SubscriptionData, ...] = ()  # subscriptionDataSet
    unit_mode: bool = False  # unitMode

    @classmethod
    def from_json(cls, obj: object) -> ConsumerData:
        if not isinstance(obj, dict) or not isinstance(obj.get("groupName"), str) or not obj["groupName"]:
            raise ProtocolError("heartbeat: consumer data without a groupName")
        subs = obj.get("subscriptionDataSet")
        subs = [] if subs is None else subs
        if not isinstance(subs, list):
            raise ProtocolError("heartbeat: subscriptionDataSet must be a list")
        return cls(
            group_name=obj["groupName"],
            consume_type=_enum_field(obj, "consumeType", ConsumeType, ConsumeType.CONSUME_PASSIVELY),
            message_model=_enum_field(obj, "messageModel", MessageModel, MessageModel.CLUSTERING),
            consume_from_where=_enum_field(
                obj, "consumeFromWhere", ConsumeFromWhere, ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
            ),
            subscriptions=tuple(SubscriptionData.from_json(s) for s in subs),
            unit_mode=bool(obj.get("unitMode", False)),
        )


@dataclass(frozen=True, slots=True)
class HeartbeatData:
    """A HEART_BEAT body. ``without_sub`` (heartbeat v2) means "subscriptions unchanged, keep them"."""

    client_id: str  # clientID
    producer_groups: tuple[str, ...] = ()  # producerDataSet[].groupName
    consumers: tuple[ConsumerData, ...] = ()  # consumerDataSet
    heartbeat_fingerprint: int = 0  # heartbeatFingerprint
    without_sub: bool = False  # withoutSub
    #: OrbitMQ's addition, sent by its proxy for a gRPC client: that client's address (Java brokers
    #: ignore the key). Display only: admin bodies show it instead of the proxy's connection.
    client_addr: str | None = None  # clientAddr

    @classmethod
    def decode(cls, body: bytes) -> HeartbeatData:
        """Parse the JSON body; :class:`ProtocolError` for anything malformed (answer SYSTEM_ERROR)."""
        return cls.from_json(fastjson.loads(body))

    @classmethod
    def from_json(cls, obj: object) -> HeartbeatData:
        if not isinstance(obj, dict) or not isinstance(obj.get("clientID"), str) or not obj["clientID"]:
            raise ProtocolError("heartbeat without a clientID")
        producers = obj.get("producerDataSet")
        consumers = obj.get("consumerDataSet")
        producers = [] if producers is None else producers
        consumers = [] if consumers is None else consumers
        if not isinstance(producers, list) or not isinstance(consumers, list):
            raise ProtocolError("heartbeat: producerDataSet/consumerDataSet must be lists")
        groups = []
        for p in producers:
            if not isinstance(p, dict) or not isinstance(p.get("groupName"), str) or not p["groupName"]:
                raise ProtocolError("heartbeat: producer data without a groupName")
            groups.append(p["groupName"])
        fingerprint = obj.get("heartbeatFingerprint", 0)
        return cls(
            client_id=obj["clientID"],
            producer_groups=tuple(groups),
            consumers=tuple(ConsumerData.from_json(c) for c in consumers),
            heartbeat_fingerprint=fingerprint if isinstance(fingerprint, int) else 0,
            without_sub=bool(obj.get("withoutSub", False)),
            client_addr=_client_addr(obj.get("clientAddr")),
        )


def _client_addr(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > 300:
        raise ProtocolError("heartbeat: clientAddr must be a non-empty string")
    return raw
