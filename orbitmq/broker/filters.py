"""Subscriptions and tag filtering (RocketMQ ``SubscriptionData``, ``FilterAPI``, ``ExpressionMessageFilter``).

Upstream facts mirrored here:

- ``"*"`` or an empty expression subscribes to everything (the stored ``subString`` becomes ``"*"``).
- Otherwise the expression is split on ``||`` (Java ``String.split``: trailing empty parts dropped; no
  part at all, e.g. ``"||"``, is a parse failure), each part trimmed, empty parts dropped; the codes are
  Java ``String.hashCode`` of the tags. An expression with no tag left (``" || "``) matches nothing.
- The broker filters by tag *code* at the consume-queue level: a message without tags has code 0 and
  matches only ``"*"``. Upstream's broker never compares tag strings (the Java client re-checks
  ``tagsSet.contains(msg.tags)`` and drops tagless messages); :func:`tag_exact_filter` is that check, so
  the store can also weed out hash collisions.
- SQL92 needs ``enablePropertyFilter``; with it off (OrbitMQ does not implement SQL92, so always) a pull
  or CHECK_CLIENT_CONFIG answers SYSTEM_ERROR "The broker does not support consumer to filter message by
  SQL92" (:func:`unsupported_expression_error`). A malformed expression answers SUBSCRIPTION_PARSE_FAILED
  (:class:`SubscriptionParseError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.record import Prop, java_string_hash
from orbitmq.store.api import RecordFilter, TagFilter

__all__ = [
    "EXPRESSION_SQL92",
    "EXPRESSION_TAG",
    "SUB_ALL",
    "SubscriptionData",
    "SubscriptionParseError",
    "build_subscription",
    "is_tag_type",
    "tag_code_filter",
    "tag_exact_filter",
    "unsupported_expression_error",
]

_T = TypeVar("_T")

SUB_ALL: Final = "*"
EXPRESSION_TAG: Final = "TAG"
EXPRESSION_SQL92: Final = "SQL92"


class SubscriptionParseError(BrokerError):
    """A subscription expression that does not parse: the handler answers SUBSCRIPTION_PARSE_FAILED."""

    def __init__(self, remark: str) -> None:
        super().__init__(ResponseCode.SUBSCRIPTION_PARSE_FAILED, remark)


def is_tag_type(expression_type: str | None) -> bool:
    """Upstream ``ExpressionType.isTagType``: absent, empty or ``TAG``."""
    return not expression_type or expression_type == EXPRESSION_TAG


@dataclass(frozen=True, slots=True)
class SubscriptionData:
    """One topic subscription of a consumer group, as heartbeats and admin bodies carry it."""

    topic: str  # topic
    sub_string: str = SUB_ALL  # subString
    tags_set: tuple[str, ...] = ()  # tagsSet (order kept for stable JSON; no duplicates)
    code_set: tuple[int, ...] = ()  # codeSet: Java hashCode of each tag
    sub_version: int = 0  # subVersion: ms at subscribe time; newer replaces older
    expression_type: str = EXPRESSION_TAG  # expressionType
    class_filter_mode: bool = False  # classFilterMode (obsolete filter servers)

    @property
    def is_all(self) -> bool:
        return self.sub_string == SUB_ALL

    def to_json(self) -> dict[str, Any]:
        return {
            "classFilterMode": self.class_filter_mode,
            "codeSet": list(self.code_set),
            "expressionType": self.expression_type,
            "subString": self.sub_string,
            "subVersion": self.sub_version,
            "tagsSet": list(self.tags_set),
            "topic": self.topic,
        }

    @classmethod
    def from_json(cls, obj: object) -> SubscriptionData:
        """Parse a heartbeat's SubscriptionData; :class:`ProtocolError` on a malformed one.

        ali-ons omits ``expressionType`` for tag subscriptions; both clients send ``codeSet``, which is
        trusted as upstream does (it is the Java hash of ``tagsSet``).
        """
        if not isinstance(obj, dict):
            raise ProtocolError(f"subscription data must be an object, got {type(obj).__name__}")
        topic = obj.get("topic")
        if not isinstance(topic, str) or not topic:
            raise ProtocolError(f"subscription data without a topic: {obj!r}")
        sub_string = obj.get("subString")
        expression_type = obj.get("expressionType") or EXPRESSION_TAG
        if not isinstance(sub_string, str | None) or not isinstance(expression_type, str):
            raise ProtocolError(f"subscription data of {topic}: bad subString/expressionType")
        tags = obj.get("tagsSet")
        codes = obj.get("codeSet")
        tags = [] if tags is None else tags
        codes = [] if codes is None else codes
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ProtocolError(f"subscription data of {topic}: tagsSet must be a list of strings")
        if not isinstance(codes, list) or not all(_is_int(c) for c in codes):
            raise ProtocolError(f"subscription data of {topic}: codeSet must be a list of integers")
        version = obj.get("subVersion", 0)
        if not _is_int(version):
            raise ProtocolError(f"subscription data of {topic}: subVersion must be an integer")
        return cls(
            topic=topic,
            sub_string=sub_string if sub_string else SUB_ALL,
            tags_set=_unique(tags),
            code_set=_unique(int(c) for c in codes),
            sub_version=int(version),
            expression_type=expression_type,
            class_filter_mode=bool(obj.get("classFilterMode", False)),
        )


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _unique(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


def build_subscription(
    topic: str, sub_string: str | None, expression_type: str | None = None, sub_version: int = 0
) -> SubscriptionData:
    """Upstream ``FilterAPI.build``: parse an expression from a pull header or a client API call.

    Raises :class:`SubscriptionParseError` for ``"||"``-only tag expressions and empty non-tag ones.
    A non-tag expression is kept as is (no parsing): whether it is usable is
    :func:`unsupported_expression_error`'s call.
    """
    if not is_tag_type(expression_type):
        assert expression_type is not None
        if not sub_string:
            raise SubscriptionParseError(f"Expression can't be null! {expression_type}")
        return SubscriptionData(
            topic=topic, sub_string=sub_string, sub_version=sub_version, expression_type=expression_type
        )
    if not sub_string or sub_string == SUB_ALL:
        return SubscriptionData(topic=topic, sub_string=SUB_ALL, sub_version=sub_version)
    parts = sub_string.split("||")
    while parts and parts[-1] == "":  # Java String.split drops trailing empty strings
        parts.pop()
    if not parts:
        raise SubscriptionParseError("subString split error")
    tags = _unique(t for t in (p.strip() for p in parts) if t)
    return SubscriptionData(
        topic=topic,
        sub_string=sub_string,
        tags_set=tags,
        code_set=_unique(java_string_hash(t) for t in tags),
        sub_version=sub_version,
    )


def unsupported_expression_error(sub: SubscriptionData) -> BrokerError | None:
    """None for a tag subscription; else the SYSTEM_ERROR upstream answers with ``enablePropertyFilter`` off.

    OrbitMQ implements no property (SQL92) filter, so every non-tag subscription gets it.
    """
    if is_tag_type(sub.expression_type):
        return None
    return BrokerError(
        ResponseCode.SYSTEM_ERROR,
        f"The broker does not support consumer to filter message by {sub.expression_type}",
    )


def _require_tag_type(sub: SubscriptionData) -> None:
    error = unsupported_expression_error(sub)
    if error is not None:
        raise error


def tag_code_filter(sub: SubscriptionData) -> TagFilter | None:
    """Consume-queue filter on the tag code; None = everything matches.

    Raises the :func:`unsupported_expression_error` for a non-tag subscription.
    """
    _require_tag_type(sub)
    if sub.is_all or sub.class_filter_mode:
        return None
    codes = frozenset(sub.code_set)
    return codes.__contains__


def tag_exact_filter(sub: SubscriptionData) -> RecordFilter | None:
    """Record filter on the TAGS property (weeds out hash collisions); None = everything matches.

    A message without TAGS does not match a tag list (its code is 0 and the Java client drops it).
    """
    _require_tag_type(sub)
    if sub.is_all or sub.class_filter_mode:
        return None
    tags = frozenset(sub.tags_set)

    def matches(properties: dict[str, str]) -> bool:
        return properties.get(Prop.TAGS) in tags

    return matches
