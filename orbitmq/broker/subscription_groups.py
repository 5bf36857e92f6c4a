"""Consumer group configs on the broker (RocketMQ ``SubscriptionGroupConfig``, ``SubscriptionGroupManager``):
``subscriptionGroup.json``, auto-creation of groups and the per-group, per-topic forbidden bits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.persist import DataVersion, JsonConfigManager
from orbitmq.broker.topics import validate_group
from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError
from orbitmq.protocol.codes import ResponseCode
from orbitmq.store.fileops import FileOps

__all__ = ["SubscriptionGroupConfig", "SubscriptionGroupManager"]

# The logger name predates the split out of groups.py; operators' log filters rely on it.
log = logging.getLogger("orbitmq.broker.groups")


# -- subscription group configs ------------------------------------------------------------------------------
_GROUP_FIELDS: Final = {
    "groupName": "group_name",
    "consumeEnable": "consume_enable",
    "consumeFromMinEnable": "consume_from_min_enable",
    "consumeBroadcastEnable": "consume_broadcast_enable",
    "consumeMessageOrderly": "consume_message_orderly",
    "retryQueueNums": "retry_queue_nums",
    "retryMaxTimes": "retry_max_times",
    "brokerId": "broker_id",
    "whichBrokerWhenConsumeSlowly": "which_broker_when_consume_slowly",
    "notifyConsumerIdsChangedEnable": "notify_consumer_ids_changed_enable",
    "groupSysFlag": "group_sys_flag",
    "consumeTimeoutMinute": "consume_timeout_minute",
}


@dataclass(frozen=True, slots=True)
class SubscriptionGroupConfig:
    """A consumer group's broker-side settings (``subscriptionGroup.json``, UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)."""

    group_name: str  # groupName
    consume_enable: bool = True  # consumeEnable
    consume_from_min_enable: bool = True  # consumeFromMinEnable
    consume_broadcast_enable: bool = True  # consumeBroadcastEnable
    consume_message_orderly: bool = False  # consumeMessageOrderly (FIFO group)
    retry_queue_nums: int = 1  # retryQueueNums
    retry_max_times: int = 16  # retryMaxTimes (maxReconsumeTimes)
    broker_id: int = 0  # brokerId
    which_broker_when_consume_slowly: int = 1  # whichBrokerWhenConsumeSlowly
    notify_consumer_ids_changed_enable: bool = True  # notifyConsumerIdsChangedEnable
    group_sys_flag: int = 0  # groupSysFlag
    consume_timeout_minute: int = 15  # consumeTimeoutMinute
    attributes: Mapping[str, str] = field(default_factory=dict)  # attributes
    #: Upstream fields OrbitMQ does not use (groupRetryPolicy, subscriptionDataSet), kept for round trips.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for json_name, attr in _GROUP_FIELDS.items():
            out[json_name] = getattr(self, attr)
        out["attributes"] = dict(self.attributes)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SubscriptionGroupConfig:
        """Parse upstream's JSON; ValueError for a wrong field type."""
        kwargs: dict[str, Any] = {}
        for json_name, attr in _GROUP_FIELDS.items():
            if json_name not in obj:
                continue
            value = obj[json_name]
            default = getattr(_DEFAULT_GROUP, attr)
            if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default)):
                raise ValueError(
                    f"subscription group field {json_name}: expected {type(default).__name__}, got {value!r}"
                )
            kwargs[attr] = value
        if not kwargs.get("group_name"):
            raise ValueError(f"subscription group without groupName: {obj!r}")
        attributes = obj.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise ValueError("subscription group attributes must be an object")
        extra = {k: v for k, v in obj.items() if k not in _GROUP_FIELDS and k != "attributes"}
        return cls(**kwargs, attributes={str(k): str(v) for k, v in attributes.items()}, extra=extra)


_DEFAULT_GROUP: Final = SubscriptionGroupConfig(group_name="")

#: Groups every broker has (MixAll): tools, filter server, self test, ONS proxies, transaction check.
_SYSTEM_GROUPS: Final = (
    "TOOLS_CONSUMER",
    "FILTERSRV_CONSUMER",
    "SELF_TEST_C_GROUP",
    "CID_ONS-HTTP-PROXY",
    "CID_ONSAPI_PULL",
    "CID_ONSAPI_PERMISSION",
    "CID_ONSAPI_OWNER",
    "CID_RMQ_SYS_TRANS",
)
CID_RMQ_SYS_PREFIX: Final = "CID_RMQ_SYS_"


class SubscriptionGroupManager(JsonConfigManager):
    """Consumer group configs, persisted as ``<root>/config/subscriptionGroup.json``.

    No I/O on construction; call :meth:`load`. Changes mark the file dirty: persist with
    ``await manager.persist_async()`` or a :class:`~orbitmq.broker.persist.PersistService`.
    """

    name = "subscriptionGroup"

    def __init__(
        self, root_dir: str, broker_config: BrokerConfig, clock: Clock, file_ops: FileOps | None = None
    ) -> None:
        super().__init__(os.path.join(root_dir, "config", "subscriptionGroup.json"), clock, file_ops)
        self.broker_config = broker_config
        self.data_version = DataVersion(timestamp=clock.now_ms())
        self._table: dict[str, SubscriptionGroupConfig] = {
            name: SubscriptionGroupConfig(name) for name in _SYSTEM_GROUPS
        }
        #: group → topic → forbidden perm bits (PermName index bits), as upstream's forbiddenTable.
        self._forbidden: dict[str, dict[str, int]] = {}

    def _bump(self) -> None:
        self.data_version = self.data_version.next(self.clock.now_ms())
        self._mark_changed()

    def get(self, group: str) -> SubscriptionGroupConfig | None:
        """The group's config without auto-creating it."""
        return self._table.get(group)

    def contains(self, group: str) -> bool:
        return group in self._table

    def find_subscription_group_config(self, group: str) -> SubscriptionGroupConfig | None:
        """The group's config, auto-created with defaults when ``autoCreateSubscriptionGroup`` (or for a
        ``CID_RMQ_SYS_`` group with ``enableCreateSysGroup``); None = SUBSCRIPTION_GROUP_NOT_EXIST.
        An invalid group name is never created."""
        existing = self._table.get(group)
        if existing is not None:
            return existing
        cfg = self.broker_config
        sys_group = cfg.enable_create_sys_group and group.startswith(CID_RMQ_SYS_PREFIX)
        if not (cfg.auto_create_subscription_group or sys_group) or validate_group(group) is not None:
            return None
        with self._lock:
            created = self._table.setdefault(group, SubscriptionGroupConfig(group))
            self._bump()
        log.info("auto-created subscription group %s", group)
        return created

    def update_subscription_group_config(self, config: SubscriptionGroupConfig) -> SubscriptionGroupConfig:
        """Create or replace a group config (admin); ``BrokerError(INVALID_PARAMETER)`` for a bad name."""
        remark = validate_group(config.group_name)
        if remark is not None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, remark)
        with self._lock:
            old = self._table.get(config.group_name)
            if old == config:
                return config
            self._table[config.group_name] = config
            self._bump()
        log.info("%s subscription group %s", "updated" if old else "created", config)
        return config

    def delete_subscription_group_config(self, group: str) -> SubscriptionGroupConfig | None:
        with self._lock:
            old = self._table.pop(group, None)
            forbidden = self._forbidden.pop(group, None)
            if old is not None or forbidden is not None:
                self._bump()
        if old is not None:
            log.info("deleted subscription group %s", old)
        return old

    def all_configs(self) -> dict[str, SubscriptionGroupConfig]:
        with self._lock:
            return dict(self._table)

    # -- forbidden (per group and topic, PermName index bits) ----------------------------------------
    def forbidden(self, group: str, topic: str) -> int:
        return max(0, self._forbidden.get(group, {}).get(topic, 0))

    def is_forbidden(self, group: str, topic: str, perm_index: int) -> bool:
        bit = 1 << perm_index
        return self.forbidden(group, topic) & bit == bit

    def update_forbidden(self, group: str, topic: str, perm_index: int, forbid: bool) -> None:
        value = self.forbidden(group, topic)
        value = value | (1 << perm_index) if forbid else value & ~(1 << perm_index)
        with self._lock:
            topics = self._forbidden.setdefault(group, {})
            if value:
                topics[topic] = value
            else:
                topics.pop(topic, None)
                if not topics:
                    del self._forbidden[group]
            self._bump()

    # -- serialisation ---------------------------------------------------------------------------------
    def wrapper_json(self) -> dict[str, Any]:
        """The GET_ALL_SUBSCRIPTIONGROUP_CONFIG body (same shape as the file)."""
        with self._lock:
            return self.encode_obj()

    def encode_obj(self) -> dict[str, Any]:
        return {
            "dataVersion": self.data_version.to_json(),
            "forbiddenTable": {g: dict(t) for g, t in sorted(self._forbidden.items())},
            "subscriptionGroupTable": {g: c.to_json() for g, c in sorted(self._table.items())},
        }

    def decode_obj(self, obj: dict[str, Any]) -> None:
        table = obj.get("subscriptionGroupTable") or {}
        forbidden = obj.get("forbiddenTable") or {}
        if not isinstance(table, dict) or not isinstance(forbidden, dict):
            raise ValueError("subscriptionGroupTable/forbiddenTable must be objects")
        for name, raw in table.items():
            if not isinstance(raw, dict):
                raise ValueError(f"subscription group {name} must be an object")
            self._table[name] = SubscriptionGroupConfig.from_json(
                {**raw, "groupName": raw.get("groupName") or name}
            )
        for group, topics in forbidden.items():
            if not isinstance(topics, dict):
                raise ValueError(f"forbiddenTable of {group} must be an object")
            self._forbidden[group] = {str(t): int(v) for t, v in topics.items()}
        self.data_version = DataVersion.from_json(obj.get("dataVersion"))
