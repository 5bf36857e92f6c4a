"""Subscriptions and message filtering (RocketMQ ``SubscriptionData``, ``FilterAPI``, ``ExpressionMessageFilter``).

Upstream facts mirrored here:

- ``"*"`` or an empty expression subscribes to everything (the stored ``subString`` becomes ``"*"``).
- Otherwise the expression is split on ``||`` (Java ``String.split``: trailing empty parts dropped; no
  part at all, e.g. ``"||"``, is a parse failure), each part trimmed, empty parts dropped; the codes are
  Java ``String.hashCode`` of the tags. An expression with no tag left (``" || "``) matches nothing.
- The broker filters by tag *code* at the consume-queue level: a message without tags has code 0 and
  matches only ``"*"``. Upstream's broker never compares tag strings (the Java client re-checks
  ``tagsSet.contains(msg.tags)`` and drops tagless messages); :func:`tag_exact_filter` is that check, so
  the store can also weed out hash collisions.
- ``SQL92`` subscriptions filter on the message properties (:mod:`orbitmq.broker.sql92`) and only when
  ``enablePropertyFilter`` is on; with it off a pull or CHECK_CLIENT_CONFIG answers SYSTEM_ERROR "The broker
  does not support consumer to filter message by SQL92". An expression that does not compile answers
  SUBSCRIPTION_PARSE_FAILED (:class:`SubscriptionParseError`); any other expression type too.

:class:`MessageFilterFactory` is the one entry point for pull and pop: ``build(subscription)`` gives a
:class:`MessageFilter` (a consume-queue tag filter and/or a record filter on properties) and caches the
compiled SQL92 expressions.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from orbitmq.broker.sql92 import Sql92Error, Sql92Filter, compile_sql92
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.record import Prop, java_string_hash
from orbitmq.store.api import RecordFilter, TagFilter

__all__ = [
    "EXPRESSION_SQL92",
    "EXPRESSION_TAG",
    "MATCH_ALL",
    "SQL92_CACHE_SIZE",
    "SUB_ALL",
    "MessageFilter",
    "MessageFilterFactory",
    "SubscriptionData",
    "SubscriptionParseError",
    "build_subscription",
    "is_tag_type",
    "tag_code_filter",
    "tag_exact_filter",
    "unsupported_expression_error",
]

log = logging.getLogger("orbitmq.broker.filters")

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


def unsupported_expression_error(
    sub: SubscriptionData, enable_property_filter: bool = False
) -> BrokerError | None:
    """None when the broker can filter by ``sub``'s expression type, else upstream's SYSTEM_ERROR.

    Tag subscriptions always work; SQL92 (and any other type) needs ``enablePropertyFilter``.
    """
    if is_tag_type(sub.expression_type) or enable_property_filter:
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


# -- one filter per subscription -----------------------------------------------------------------------------
#: Compiled SQL92 expressions kept per factory (upstream's parser keeps 100).
SQL92_CACHE_SIZE: Final = 256


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """How one subscription selects messages, in the two steps the store applies.

    ``tag_filter`` runs on the consume-queue tag code (cheap, no CommitLog read); ``record_filter`` on the
    decoded properties of the records that passed it (exact tags, or the SQL92 predicate). None = pass.
    """

    tag_filter: TagFilter | None = None
    record_filter: RecordFilter | None = None

    @property
    def is_all(self) -> bool:
        return self.tag_filter is None and self.record_filter is None

    def matches(self, tags_code: int, properties: Mapping[str, str]) -> bool:
        """Both steps at once, for callers that hold a decoded message (pop re-checks, revive)."""
        if self.tag_filter is not None and not self.tag_filter(tags_code):
            return False
        return self.record_filter is None or self.record_filter(properties)  # type: ignore[arg-type]


MATCH_ALL: Final = MessageFilter()


class MessageFilterFactory:
    """Subscriptions → :class:`MessageFilter`; SQL92 expressions are compiled once and cached (LRU).

    One per handler family (pull, pop); ``enable_property_filter`` is the broker's ``enablePropertyFilter``.
    The counters are for metrics.
    """

    def __init__(self, enable_property_filter: bool, cache_size: int = SQL92_CACHE_SIZE) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be positive")
        self.enable_property_filter = enable_property_filter
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[str, Sql92Filter | Sql92Error] = collections.OrderedDict()
        self.sql92_compiled = 0  # compilations (cache misses)
        self.sql92_cache_hits = 0
        self.sql92_invalid = 0  # expressions that did not compile

    def build(self, sub: SubscriptionData) -> MessageFilter:
        """The filter of ``sub``.

        Raises the SYSTEM_ERROR of :func:`unsupported_expression_error` for a non-tag subscription with
        ``enablePropertyFilter`` off, and :class:`SubscriptionParseError` for an expression that does not
        compile or a type other than TAG and SQL92.
        """
        if is_tag_type(sub.expression_type):
            return MessageFilter(tag_code_filter(sub), tag_exact_filter(sub))
        return MessageFilter(record_filter=self.sql92(sub))

    def check(self, sub: SubscriptionData) -> None:
        """CHECK_CLIENT_CONFIG: raise what :meth:`build` would, with the compiler's message as the remark."""
        try:
            self.build(sub)
        except SubscriptionParseError as exc:
            raise SubscriptionParseError(exc.remark.removeprefix(_PARSE_FAILED)) from None

    def sql92(self, sub: SubscriptionData) -> Sql92Filter:
        """The compiled SQL92 expression of ``sub`` (same errors as :meth:`build`)."""
        error = unsupported_expression_error(sub, self.enable_property_filter)
        if error is not None:
            raise error
        compiled = self._compiled_or_error(sub)
        if isinstance(compiled, str):
            raise SubscriptionParseError(f"{_PARSE_FAILED}{compiled}")
        return compiled

    def compile_error(self, sub: SubscriptionData) -> str | None:
        """Why a non-tag expression does not compile (whatever ``enablePropertyFilter`` says); None if it
        does or ``sub`` is a tag subscription."""
        if is_tag_type(sub.expression_type):
            return None
        compiled = self._compiled_or_error(sub)
        return compiled if isinstance(compiled, str) else None

    def _compiled_or_error(self, sub: SubscriptionData) -> Sql92Filter | str:
        if sub.expression_type != EXPRESSION_SQL92:
            return f"unsupported expression type {sub.expression_type}"
        compiled = self._compiled(sub.sub_string)
        return str(compiled) if isinstance(compiled, Sql92Error) else compiled

    def _compiled(self, expression: str) -> Sql92Filter | Sql92Error:
        cached = self._cache.get(expression)
        if cached is not None:
            self._cache.move_to_end(expression)
            self.sql92_cache_hits += 1
            return cached
        result: Sql92Filter | Sql92Error
        try:
            result = compile_sql92(expression)
        except Sql92Error as exc:
            result = exc
            self.sql92_invalid += 1
        else:
            if result.ignored_tail:  # upstream ignores it silently; a typo here usually means "no match"
                log.warning(
                    "SQL92 %r: the text %r after the expression is ignored", expression, result.ignored_tail
                )
        self.sql92_compiled += 1
        self._cache[expression] = result
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result


_PARSE_FAILED: Final = "parse the consumer's subscription failed: "
