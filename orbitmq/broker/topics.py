"""Topic configs (RocketMQ ``TopicConfig``, ``TopicValidator``, ``TopicConfigManager``).

Upstream facts mirrored here (apache/rocketmq develop, ``8fc57f14``):

- Names: only ``[%|a-zA-Z0-9_-]``; at most 127 chars, 255 for ``%RETRY%``/``%DLQ%`` topics; groups at most
  120 chars. Remarks are upstream's wording; the admin handler answers INVALID_PARAMETER with them.
- System topics: TBW102, SCHEDULE_TOPIC_XXXX, BenchmarkTest, RMQ_SYS_TRANS_HALF_TOPIC, RMQ_SYS_TRACE_TOPIC,
  RMQ_SYS_TRANS_OP_HALF_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC, SELF_TEST_TOPIC, OFFSET_MOVED_EVENT,
  CHECKPOINT_TOPIC, anything starting with ``rmq_sys_``, plus the topics a broker creates at start for its
  own cluster and broker names. Producers may not send to SCHEDULE_TOPIC_XXXX, the two transaction
  topics, TRANS_CHECK_MAX_TIME_TOPIC, SELF_TEST_TOPIC and OFFSET_MOVED_EVENT (NO_PERMISSION).
- The message type lives in ``attributes`` under ``message.type`` (no sign): the admin request carries
  ``+message.type=FIFO`` and the broker strips the ``+`` when it applies the modification
  (``AttributeUtil.alterCurrentAttributes``), so ``topics.json`` holds ``{"message.type": "FIFO"}``.
- Retry topics (``%RETRY%<group>``) get the group's ``retryQueueNums`` (1) queues, DLQ topics
  (``%DLQ%<group>``) 1 queue; both perm 6 (READ|WRITE).

Every mutation bumps the data version, marks the file dirty and calls the change listeners (the broker
re-registers with the NameServer). Persisting is the caller's: ``await manager.persist_async()`` after an
admin change, or a :class:`orbitmq.broker.persist.PersistService`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.persist import DataVersion, JsonConfigManager
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.record import Prop
from orbitmq.store.fileops import FileOps

__all__ = [
    "DLQ_GROUP_TOPIC_PREFIX",
    "MESSAGE_TYPE_ATTRIBUTE",
    "RETRY_GROUP_TOPIC_PREFIX",
    "SCHEDULE_TOPIC",
    "TBW102",
    "TRANS_HALF_TOPIC",
    "TRANS_OP_HALF_TOPIC",
    "Perm",
    "TopicChangeListener",
    "TopicConfig",
    "TopicConfigManager",
    "TopicMessageType",
    "apply_attribute_modifications",
    "dlq_topic",
    "is_inherited",
    "is_not_allowed_send_topic",
    "is_readable",
    "is_system_topic",
    "is_writeable",
    "message_type_mismatch",
    "message_type_of",
    "parse_attribute_modifications",
    "retry_topic",
    "validate_group",
    "validate_topic",
]

log = logging.getLogger("orbitmq.broker.topics")

TBW102: Final = "TBW102"
RETRY_GROUP_TOPIC_PREFIX: Final = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX: Final = "%DLQ%"
SCHEDULE_TOPIC: Final = "SCHEDULE_TOPIC_XXXX"
SCHEDULE_TOPIC_QUEUE_NUM: Final = 18
TRANS_HALF_TOPIC: Final = "RMQ_SYS_TRANS_HALF_TOPIC"
TRANS_OP_HALF_TOPIC: Final = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
TRANS_CHECK_MAX_TIME_TOPIC: Final = "TRANS_CHECK_MAX_TIME_TOPIC"
SELF_TEST_TOPIC: Final = "SELF_TEST_TOPIC"
OFFSET_MOVED_EVENT: Final = "OFFSET_MOVED_EVENT"
BENCHMARK_TOPIC: Final = "BenchmarkTest"
SYSTEM_TOPIC_PREFIX: Final = "rmq_sys_"
REPLY_TOPIC_POSTFIX: Final = "REPLY_TOPIC"
MESSAGE_TYPE_ATTRIBUTE: Final = "message.type"

_STATIC_SYSTEM_TOPICS: Final = frozenset(
    {
        TBW102,
        SCHEDULE_TOPIC,
        BENCHMARK_TOPIC,
        TRANS_HALF_TOPIC,
        "RMQ_SYS_TRACE_TOPIC",
        TRANS_OP_HALF_TOPIC,
        TRANS_CHECK_MAX_TIME_TOPIC,
        SELF_TEST_TOPIC,
        OFFSET_MOVED_EVENT,
        "CHECKPOINT_TOPIC",
    }
)
_NOT_ALLOWED_SEND_TOPICS: Final = frozenset(
    {
        SCHEDULE_TOPIC,
        TRANS_HALF_TOPIC,
        TRANS_OP_HALF_TOPIC,
        TRANS_CHECK_MAX_TIME_TOPIC,
        SELF_TEST_TOPIC,
        OFFSET_MOVED_EVENT,
    }
)
_VALID_NAME: Final = re.compile(r"[%|a-zA-Z0-9_-]+")
TOPIC_MAX_LENGTH: Final = 127
RETRY_OR_DLQ_TOPIC_MAX_LENGTH: Final = 255
GROUP_MAX_LENGTH: Final = 120


class Perm(enum.IntFlag):
    """RocketMQ ``PermName`` bits."""

    INHERIT = 1
    WRITE = 2
    READ = 4
    PRIORITY = 8
    RW = READ | WRITE


def is_readable(perm: int) -> bool:
    return bool(perm & Perm.READ)


def is_writeable(perm: int) -> bool:
    return bool(perm & Perm.WRITE)


def is_inherited(perm: int) -> bool:
    return bool(perm & Perm.INHERIT)


class TopicMessageType(enum.Enum):
    """Values of the ``message.type`` attribute (absent = NORMAL)."""

    UNSPECIFIED = "UNSPECIFIED"
    NORMAL = "NORMAL"
    FIFO = "FIFO"
    DELAY = "DELAY"
    TRANSACTION = "TRANSACTION"
    MIXED = "MIXED"


#: Properties that make a message DELAY (a delay level or one of the timer properties).
_DELAY_PROPERTIES: Final = (Prop.DELAY, Prop.TIMER_DELIVER_MS, Prop.TIMER_DELAY_SEC, Prop.TIMER_DELAY_MS)


def message_type_of(properties: Mapping[str, str]) -> TopicMessageType:
    """What a message's properties make it (upstream ``TopicMessageType.parseFromMessageProperty``):
    TRANSACTION if ``TRAN_MSG`` is ``"true"``, else DELAY with a delay level or a timer property, else FIFO
    with a sharding key (``__SHARDINGKEY``, the gRPC message group), else NORMAL."""
    if properties.get(Prop.TRAN_MSG) == "true":
        return TopicMessageType.TRANSACTION
    if any(p in properties for p in _DELAY_PROPERTIES):
        return TopicMessageType.DELAY
    if Prop.SHARDING_KEY in properties:
        return TopicMessageType.FIFO
    return TopicMessageType.NORMAL


def message_type_mismatch(topic_type: TopicMessageType, message_type: TopicMessageType) -> str | None:
    """None when a ``message_type`` message may go to a ``topic_type`` topic, else the remark of upstream's
    ``DefaultTopicMessageTypeValidator`` (the types must be equal, or the topic MIXED)."""
    if message_type is not TopicMessageType.UNSPECIFIED and (
        message_type is topic_type or topic_type is TopicMessageType.MIXED
    ):
        return None
    return (
        f"TopicMessageType validate failed, the expected type is {topic_type.value}, "
        f"but actual type is {message_type.value}"
    )


def retry_topic(group: str) -> str:
    return RETRY_GROUP_TOPIC_PREFIX + group


def dlq_topic(group: str) -> str:
    return DLQ_GROUP_TOPIC_PREFIX + group


# -- validation --------------------------------------------------------------------------------------------
def validate_topic(topic: str) -> str | None:
    """None when ``topic`` is a valid name, else upstream's remark for the INVALID_PARAMETER answer."""
    if not topic or not topic.strip():
        return "The specified topic is blank."
    if not _VALID_NAME.fullmatch(topic):
        return f"The specified topic: {topic}, contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
    if topic.startswith((RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX)):
        if len(topic) > RETRY_OR_DLQ_TOPIC_MAX_LENGTH:
            return (
                f"The specified topic is DLQ or Retry topic: {topic}, and it's longer than topic max length: "
                f"{RETRY_OR_DLQ_TOPIC_MAX_LENGTH}"
            )
    elif len(topic) > TOPIC_MAX_LENGTH:
        return f"The specified topic: {topic}, is longer than topic max length: {TOPIC_MAX_LENGTH}"
    return None


def validate_group(group: str) -> str | None:
    """None when ``group`` is a valid consumer/producer group name, else upstream's remark."""
    if not group or not group.strip():
        return "The specified group is blank."
    if not _VALID_NAME.fullmatch(group):
        return f"The specified group: {group}, contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
    if len(group) > GROUP_MAX_LENGTH:
        return f"The specified group: {group}, is longer than group max length: {GROUP_MAX_LENGTH}"
    return None


def is_system_topic(topic: str) -> bool:
    """The static system topics and the ``rmq_sys_`` prefix (a manager adds its broker's own ones)."""
    return topic in _STATIC_SYSTEM_TOPICS or topic.startswith(SYSTEM_TOPIC_PREFIX)


def is_not_allowed_send_topic(topic: str) -> bool:
    """Topics only the broker writes; a send to them answers NO_PERMISSION
    ``Sending message to topic[<t>] is forbidden.``"""
    return topic in _NOT_ALLOWED_SEND_TOPICS


# -- attributes --------------------------------------------------------------------------------------------
#: Attributes OrbitMQ honours: name → (values allowed, changeable after creation). Upstream also knows
#: queue.type and cleanup.policy (only their defaults are accepted: BatchCQ and compaction are not
#: implemented) and reserve.time (tiered store only; upstream rejects it without one, so do we).
_ATTRIBUTES: Final[dict[str, tuple[frozenset[str], bool]]] = {
    MESSAGE_TYPE_ATTRIBUTE: (frozenset(t.value for t in TopicMessageType), True),
    "queue.type": (frozenset({"SimpleCQ"}), False),
    "cleanup.policy": (frozenset({"DELETE"}), False),
}


def parse_attribute_modifications(text: str | None) -> dict[str, str]:
    """Upstream ``AttributeParser.parseToMap``: ``"+k=v,-k2"`` → ``{"+k": "v", "-k2": ""}``.

    Raises ``BrokerError(SYSTEM_ERROR)`` with upstream's message on a malformed string.
    """
    out: dict[str, str] = {}
    if not text:
        return out
    for kv in text.split(","):
        if "=" in kv:
            key, _, value = kv.partition("=")
            if "+" not in key:
                raise _attr_error(f"add/alter attribute format is wrong: {key}")
            value = value.split("=", 1)[0]
        else:
            key, value = kv, ""
            if "-" not in key:
                raise _attr_error(f"delete attribute format is wrong: {key}")
        if key in out:
            raise _attr_error(f"key duplication: {key}")
        out[key] = value
    return out


def _attr_error(message: str) -> BrokerError:
    return BrokerError(ResponseCode.SYSTEM_ERROR, message)


def apply_attribute_modifications(
    create: bool, current: Mapping[str, str], modifications: Mapping[str, str]
) -> dict[str, str]:
    """Upstream ``AttributeUtil.alterCurrentAttributes``: signed modifications → the new attribute map.

    On create only ``+`` keys are allowed; on update ``+`` adds/changes and ``-`` deletes an existing key.
    Unknown keys, unchangeable keys on update and values outside the allowed set are errors.
    """
    result = dict(current)
    seen: set[str] = set()
    for signed_key, value in modifications.items():
        sign, key = signed_key[:1], signed_key[1:]
        if not key or "+" in key or "-" in key:
            raise _attr_error("kv string format wrong.")
        if key in seen:
            raise _attr_error(f"alter duplication key. key: {key}")
        seen.add(key)
        if sign not in ("+", "-"):
            raise _attr_error(f"wrong format key: {key}")
        if create and sign != "+":
            raise _attr_error(f"only add attribute is supported while creating topic. key: {key}")
        spec = _ATTRIBUTES.get(key)
        if spec is None:
            raise _attr_error(f"unsupported key: {key}")
        allowed, changeable = spec
        if not create and not changeable:
            raise _attr_error(f"attempt to update an unchangeable attribute. key: {key}")
        if sign == "-":
            if key not in current:
                raise _attr_error(f"attempt to delete a nonexistent key: {key}")
            result.pop(key)
            continue
        if value not in allowed:
            raise _attr_error(f"value is not in set: {sorted(allowed)}")
        result[key] = value
    return result


# -- TopicConfig -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TopicConfig:
    """One topic on this broker; JSON field names are upstream's (``topics.json``, REGISTER_BROKER)."""

    topic_name: str  # topicName
    read_queue_nums: int = 16  # readQueueNums (upstream default for a bare TopicConfig)
    write_queue_nums: int = 16  # writeQueueNums
    perm: int = int(Perm.RW)  # perm: PermName bits
    topic_filter_type: str = "SINGLE_TAG"  # topicFilterType: SINGLE_TAG | MULTI_TAG
    topic_sys_flag: int = 0  # topicSysFlag: bit0 unit, bit1 unit-sub
    order: bool = False  # order
    attributes: Mapping[str, str] = field(default_factory=dict)  # attributes: message.type, ...

    @property
    def message_type(self) -> TopicMessageType:
        value = self.attributes.get(MESSAGE_TYPE_ATTRIBUTE)
        try:
            return TopicMessageType(value) if value else TopicMessageType.NORMAL
        except ValueError:
            return TopicMessageType.NORMAL

    @property
    def queue_nums(self) -> int:
        """Queues that exist: a queue id ≥ this is INVALID_PARAMETER."""
        return max(self.read_queue_nums, self.write_queue_nums)

    def replace(self, **changes: Any) -> TopicConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "order": self.order,
            "perm": self.perm,
            "readQueueNums": self.read_queue_nums,
            "topicFilterType": self.topic_filter_type,
            "topicName": self.topic_name,
            "topicSysFlag": self.topic_sys_flag,
            "writeQueueNums": self.write_queue_nums,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TopicConfig:
        """Parse upstream's JSON; missing fields take upstream's defaults. ValueError on a wrong type."""
        name = obj.get("topicName")
        if not isinstance(name, str) or not name:
            raise ValueError(f"topic config without topicName: {obj!r}")
        attributes = obj.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise ValueError(f"topic {name}: attributes must be an object")
        return cls(
            topic_name=name,
            read_queue_nums=_int(obj, "readQueueNums", 16),
            write_queue_nums=_int(obj, "writeQueueNums", 16),
            perm=_int(obj, "perm", int(Perm.RW)),
            topic_filter_type=str(obj.get("topicFilterType") or "SINGLE_TAG"),
            topic_sys_flag=_int(obj, "topicSysFlag", 0),
            order=bool(obj.get("order", False)),
            attributes={str(k): str(v) for k, v in attributes.items()},
        )


def _int(obj: Mapping[str, Any], key: str, default: int) -> int:
    v = obj.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{key} must be an integer, got {v!r}")
    return v


#: Called after a topic was created, changed (its new config) or deleted (None).
TopicChangeListener = Callable[[str, "TopicConfig | None"], None]


class TopicConfigManager(JsonConfigManager):
    """The broker's topic table, persisted as ``<root>/config/topics.json``.

    Construction creates the system topics in memory and does no I/O; call :meth:`load` (blocking) to
    read the file, whose entries override the built-in ones as upstream does.
    """

    name = "topics"

    def __init__(
        self, root_dir: str, broker_config: BrokerConfig, clock: Clock, file_ops: FileOps | None = None
    ) -> None:
        super().__init__(os.path.join(root_dir, "config", "topics.json"), clock, file_ops)
        self.broker_config = broker_config
        self._table: dict[str, TopicConfig] = {}
        self._system_topics: set[str] = set()
        self._listeners: list[TopicChangeListener] = []
        self.data_version = DataVersion(timestamp=clock.now_ms())
        for tc in self._builtin_topics():
            self._system_topics.add(tc.topic_name)
            self._table[tc.topic_name] = tc

    def _builtin_topics(self) -> list[TopicConfig]:
        cfg = self.broker_config
        rw = int(Perm.RW)
        inherit = int(Perm.INHERIT)
        topics = [TopicConfig(SELF_TEST_TOPIC, 1, 1)]
        if cfg.auto_create_topic_enable:
            n = cfg.default_topic_queue_nums
            topics.append(TopicConfig(TBW102, n, n, perm=rw | inherit))
        topics += [
            TopicConfig(BENCHMARK_TOPIC, 1024, 1024),
            TopicConfig(cfg.broker_cluster_name, perm=inherit | (rw if cfg.cluster_topic_enable else 0)),
            TopicConfig(cfg.broker_name, 1, 1, perm=inherit | (rw if cfg.broker_topic_enable else 0)),
            TopicConfig(OFFSET_MOVED_EVENT, 1, 1),
            TopicConfig(SCHEDULE_TOPIC, SCHEDULE_TOPIC_QUEUE_NUM, SCHEDULE_TOPIC_QUEUE_NUM),
        ]
        if cfg.trace_topic_enable:
            topics.append(TopicConfig(cfg.msg_trace_topic_name, 1, 1))
        topics += [
            TopicConfig(f"{cfg.broker_cluster_name}_{REPLY_TOPIC_POSTFIX}", 1, 1),
            TopicConfig(self.revive_topic, cfg.revive_queue_num, cfg.revive_queue_num),
            TopicConfig(f"{SYSTEM_TOPIC_PREFIX}SYNC_BROKER_MEMBER_{cfg.broker_name}", 1, 1, perm=inherit),
            TopicConfig(TRANS_HALF_TOPIC, 1, 1),
            TopicConfig(TRANS_OP_HALF_TOPIC, 1, 1),
        ]
        return topics

    @property
    def revive_topic(self) -> str:
        """``rmq_sys_REVIVE_LOG_<cluster>``: the pop revive log."""
        return f"{SYSTEM_TOPIC_PREFIX}REVIVE_LOG_{self.broker_config.broker_cluster_name}"

    # -- listeners -------------------------------------------------------------------------------------
    def add_listener(self, listener: TopicChangeListener) -> None:
        """``listener(topic, config_or_None)`` runs on every create/update/delete, after the change."""
        self._listeners.append(listener)

    def _changed(self, topic: str, config: TopicConfig | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(topic, config)
            except Exception:
                log.exception("topic change listener failed for %s", topic)

    def _put(self, config: TopicConfig) -> None:
        """Store ``config``; the caller holds the lock and calls :meth:`_changed` after releasing it."""
        self._table[config.topic_name] = config
        self.data_version = self.data_version.next(self.clock.now_ms())
        self._mark_changed()

    # -- queries ---------------------------------------------------------------------------------------
    def select_topic_config(self, topic: str) -> TopicConfig | None:
        return self._table.get(topic)

    def contains(self, topic: str) -> bool:
        return topic in self._table

    def topics(self) -> list[str]:
        return sorted(self._table)

    def all_configs(self) -> dict[str, TopicConfig]:
        with self._lock:
            return dict(self._table)

    def is_order_topic(self, topic: str) -> bool:
        tc = self._table.get(topic)
        return tc is not None and tc.order

    def is_system_topic(self, topic: str) -> bool:
        """Upstream's system set, including the topics this broker created at start for its own names."""
        return topic in self._system_topics or is_system_topic(topic)

    # -- mutations -------------------------------------------------------------------------------------
    def update_topic_config(
        self, config: TopicConfig, attribute_modifications: Mapping[str, str] | None = None
    ) -> TopicConfig:
        """Create or replace a topic (UPDATE_AND_CREATE_TOPIC); returns what is stored.

        ``attribute_modifications`` are the signed keys of :func:`parse_attribute_modifications`; they are
        applied to the current attributes (``config.attributes`` is ignored when they are given).
        Raises ``BrokerError(INVALID_PARAMETER)`` for a bad name, a system topic (unless
        ``validateSystemTopicWhenUpdateTopic`` is off), a negative queue count or the MIXED type, and
        ``BrokerError(SYSTEM_ERROR)`` for bad attributes (upstream's codes and remarks).
        """
        self._check_admin_update(config, attribute_modifications)
        return self._store(config, attribute_modifications)

    def _store(
        self, config: TopicConfig, attribute_modifications: Mapping[str, str] | None = None
    ) -> TopicConfig:
        with self._lock:
            old = self._table.get(config.topic_name)
            if attribute_modifications is not None:
                current = old.attributes if old is not None else {}
                attrs = apply_attribute_modifications(old is None, current, attribute_modifications)
                config = config.replace(attributes=attrs)
            if old is not None and old == config:
                return old
            self._put(config)
        log.info("%s topic %s", "updated" if old else "created", config)
        self._changed(config.topic_name, config)
        return config

    def _check_admin_update(self, config: TopicConfig, modifications: Mapping[str, str] | None) -> None:
        name = config.topic_name
        remark = validate_topic(name)
        if remark is not None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, remark)
        if self.broker_config.validate_system_topic_when_update_topic and self.is_system_topic(name):
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER, f"The topic[{name}] is conflict with system topic."
            )
        if config.read_queue_nums < 0 or config.write_queue_nums < 0:
            raise BrokerError(
                ResponseCode.INVALID_PARAMETER, f"topic[{name}]: queue numbers must not be negative"
            )
        mixed = (
            modifications and modifications.get("+" + MESSAGE_TYPE_ATTRIBUTE) == TopicMessageType.MIXED.value
        )
        if mixed and not self.broker_config.enable_mixed_message_type:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, "MIXED message type is not supported.")

    def delete_topic_config(self, topic: str) -> TopicConfig | None:
        """Remove a topic (DELETE_TOPIC_IN_BROKER); the removed config, or None if there was none."""
        with self._lock:
            old = self._table.pop(topic, None)
            if old is None:
                return None
            self.data_version = self.data_version.next(self.clock.now_ms())
            self._mark_changed()
        log.info("deleted topic %s", old)
        self._changed(topic, None)
        return old

    def create_topic_in_send(
        self,
        topic: str,
        default_topic: str,
        requested_queue_nums: int,
        topic_sys_flag: int = 0,
        remote_addr: str = "",
    ) -> TopicConfig | None:
        """The topic a SEND_MESSAGE may write to, auto-created from ``default_topic`` (TBW102) if missing.

        Upstream ``createTopicInSendMessageMethod``: the template must exist and be inheritable (TBW102
        only when ``autoCreateTopicEnable``); the new topic gets ``min(requested, template write queues)``
        queues and the template's perm without INHERIT. A missing ``%RETRY%`` topic that cannot be made
        from the template is created with 1 queue (upstream does that in the send processor). None means
        TOPIC_NOT_EXIST; the caller must have validated ``topic`` (INVALID_PARAMETER otherwise).
        """
        existing = self._table.get(topic)
        if existing is not None:
            return existing
        template = self._table.get(default_topic)
        created: TopicConfig | None = None
        inheritable = template is not None and is_inherited(template.perm)
        if default_topic == TBW102 and not self.broker_config.auto_create_topic_enable:
            inheritable = False
        if template is None:
            log.warning(
                "cannot create %s: default topic %s does not exist (%s)", topic, default_topic, remote_addr
            )
        elif not inheritable:
            log.warning(
                "cannot create %s: default topic %s is not inheritable (%s)",
                topic,
                default_topic,
                remote_addr,
            )
        else:
            n = max(0, min(requested_queue_nums, template.write_queue_nums))
            created = TopicConfig(
                topic,
                n,
                n,
                perm=template.perm & ~int(Perm.INHERIT),
                topic_filter_type=template.topic_filter_type,
                topic_sys_flag=topic_sys_flag,
            )
        if created is None:
            if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                return self.create_topic_in_send_back(topic, 1, int(Perm.RW), topic_sys_flag=topic_sys_flag)
            return None
        return self._create_if_absent(created, remote_addr)

    def create_topic_in_send_back(
        self, topic: str, queue_nums: int, perm: int, *, order: bool = False, topic_sys_flag: int = 0
    ) -> TopicConfig:
        """Upstream ``createTopicInSendMessageBackMethod``: create ``topic`` if missing; an existing one
        only has its ``order`` flag brought in line. ``BrokerError(INVALID_PARAMETER)`` for a bad name
        (e.g. a retry topic of a group with illegal characters)."""
        existing = self._table.get(topic)
        if existing is not None:
            if existing.order != order:
                return self._store(existing.replace(order=order))
            return existing
        remark = validate_topic(topic)
        if remark is not None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, remark)
        return self._create_if_absent(
            TopicConfig(topic, queue_nums, queue_nums, perm=perm, topic_sys_flag=topic_sys_flag, order=order),
            "",
        )

    def create_retry_topic(
        self, group: str, retry_queue_nums: int = 1, *, order: bool = False, topic_sys_flag: int = 0
    ) -> TopicConfig:
        """``%RETRY%<group>`` (on heartbeat and send-back): ``retryQueueNums`` queues, perm READ|WRITE."""
        return self.create_topic_in_send_back(
            retry_topic(group), retry_queue_nums, int(Perm.RW), order=order, topic_sys_flag=topic_sys_flag
        )

    def create_dlq_topic(self, group: str) -> TopicConfig:
        """``%DLQ%<group>`` (send-back past maxReconsumeTimes): 1 queue, perm READ|WRITE, as upstream."""
        return self.create_topic_in_send_back(dlq_topic(group), 1, int(Perm.RW))

    def _create_if_absent(self, config: TopicConfig, remote_addr: str) -> TopicConfig:
        with self._lock:
            existing = self._table.get(config.topic_name)
            if existing is not None:
                return existing
            self._put(config)
        log.info("created topic %s (%s)", config, remote_addr or "broker")
        self._changed(config.topic_name, config)
        return config

    # -- serialisation ---------------------------------------------------------------------------------
    def topic_config_wrapper(self) -> dict[str, Any]:
        """``TopicConfigSerializeWrapper`` JSON: the REGISTER_BROKER body's ``topicConfigSerializeWrapper``."""
        with self._lock:
            return self.encode_obj()

    def encode_obj(self) -> dict[str, Any]:
        return {
            "dataVersion": self.data_version.to_json(),
            "topicConfigTable": {name: tc.to_json() for name, tc in sorted(self._table.items())},
        }

    def decode_obj(self, obj: dict[str, Any]) -> None:
        table = obj.get("topicConfigTable") or {}
        if not isinstance(table, dict):
            raise ValueError("topicConfigTable must be an object")
        for name, raw in table.items():
            if not isinstance(raw, dict):
                raise ValueError(f"topic {name}: config must be an object")
            self._table[name] = TopicConfig.from_json({**raw, "topicName": raw.get("topicName") or name})
        self.data_version = DataVersion.from_json(obj.get("dataVersion"))
