"""Configuration from RocketMQ-style properties: ``-c FILE`` (``key=value`` lines) and ``--set key=value``.

Keys use RocketMQ's own names, so a RocketMQ user's ``broker.conf`` carries over. A key that no component
knows is an error that names it: nothing is silently ignored. This module is the only one that reads
configuration files.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from orbitmq.broker.config import BROKER_PROPERTY_NAMES, BrokerConfig, broker_config_from_properties
from orbitmq.core.errors import ConfigError
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.proxy.config import PROXY_PROPERTY_NAMES, ProxyConfig, proxy_config_from_properties
from orbitmq.store.api import FlushDiskType, StoreConfig

__all__ = [
    "NAMESRV_KEYS",
    "PROCESS_KEYS",
    "PROXY_KEYS",
    "STORE_KEYS",
    "apply_keys",
    "parse_properties",
    "read_properties",
    "split_by_component",
]

T = TypeVar("T")

#: RocketMQ ``MessageStoreConfig`` property → StoreConfig field.
STORE_KEYS: dict[str, str] = {
    "storePathRootDir": "store_path_root_dir",
    "mappedFileSizeCommitLog": "mapped_file_size_commit_log",
    "mappedFileSizeConsumeQueue": "mapped_file_size_consume_queue",
    "flushDiskType": "flush_disk_type",
    "flushIntervalCommitLog": "flush_interval_commit_log_ms",
    "flushCommitLogLeastPages": "flush_commit_log_least_pages",
    "flushCommitLogThoroughInterval": "flush_commit_log_thorough_interval_ms",
    "flushIntervalConsumeQueue": "flush_interval_consume_queue_ms",
    "syncFlushTimeout": "sync_flush_timeout_ms",
    "fileReservedTime": "file_reserved_time_h",
    "cleanResourceInterval": "clean_resource_interval_ms",
    "diskMaxUsedSpaceRatio": "disk_max_used_space_ratio",
    "maxMessageSize": "max_message_size",
    "maxHashSlotNum": "max_hash_slot_num",
    "maxIndexNum": "max_index_num",
    "messageIndexEnable": "message_index_enable",
    "checkCRCOnRecover": "check_crc_on_recover",
    "maxTransferCountOnMessageInMemory": "max_transfer_count_on_message_in_memory",
    "maxTransferBytesOnMessageInMemory": "max_transfer_bytes_on_message_in_memory",
}

#: RocketMQ ``NamesrvConfig`` property → NamesrvConfig field (``listenPort`` belongs to the broker in a
#: shared file; the NameServer's port comes from its own command line).
NAMESRV_KEYS: dict[str, str] = {
    "brokerChannelExpiredTime": "broker_channel_expired_time_ms",
    "scanNotActiveBrokerInterval": "scan_not_active_broker_interval_ms",
    "orderMessageEnable": "order_message_enable",
    "returnOrderTopicConfigToBroker": "return_order_topic_config_to_broker",
    "enableAllTopicList": "enable_all_topic_list",
    "enableTopicList": "enable_topic_list",
    "deleteTopicWithBrokerRegistration": "delete_topic_with_broker_registration",
}


#: Keys of the process itself rather than of one component (read by ``orbitmq.cli.logs``).
PROCESS_KEYS: dict[str, str] = {
    "logLevel": "log_level",  # DEBUG, INFO, WARNING, ERROR (the --log-level flag wins)
    "logFormat": "log_format",  # logfmt (key=value, the default) or json: one line per event
}


#: RocketMQ ``ProxyConfig`` property → ProxyConfig field (``maxMessageSize`` also limits the store; a key
#: that two components know goes to both).
PROXY_KEYS: dict[str, str] = PROXY_PROPERTY_NAMES


def parse_properties(text: str, source: str = "<config>") -> dict[str, str]:
    """``key=value`` lines; ``#`` and ``!`` start comments; blank lines are skipped."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ConfigError(f"{source}:{n}: expected key=value, got {raw!r}")
        out[key.strip()] = value.strip()
    return out


def read_properties(path: str | None, sets: Iterable[str]) -> dict[str, str]:
    props: dict[str, str] = {}
    if path:
        try:
            props.update(parse_properties(Path(path).read_text(), path))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        props[key.strip()] = value.strip()
    return props


def split_by_component(props: Mapping[str, str], components: Iterable[str]) -> dict[str, dict[str, str]]:
    """Route each key to every listed component that owns it; a key none of them owns is an error."""
    owners = {
        "store": STORE_KEYS,
        "broker": BROKER_PROPERTY_NAMES,
        "namesrv": NAMESRV_KEYS,
        "process": PROCESS_KEYS,
        "proxy": PROXY_KEYS,
    }
    wanted = list(components)
    out: dict[str, dict[str, str]] = {c: {} for c in wanted}
    for key, value in props.items():
        found = [c for c in wanted if key in owners[c]]
        if not found:
            known = ", ".join(wanted)
            raise ConfigError(f"unknown configuration key {key!r} (not a property of: {known})")
        for owner in found:
            out[owner][key] = value
    return out


def _convert(key: str, value: str, annotation: Any) -> object:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if value.lower() not in ("true", "false"):
            raise ConfigError(f"{key}={value!r}: expected true or false")
        return value.lower() == "true"
    if annotation is int or annotation is float:
        try:
            return annotation(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r}: expected a number") from None
    if annotation is FlushDiskType:
        try:
            return FlushDiskType(value.upper())
        except ValueError:
            raise ConfigError(f"{key}={value!r}: expected ASYNC_FLUSH or SYNC_FLUSH") from None
    if origin is tuple or isinstance(annotation, types.GenericAlias):
        return tuple(v for v in value.replace(",", ";").split(";") if v)
    return value


def apply_keys(base: T, props: Mapping[str, str], keys: Mapping[str, str]) -> T:
    """A copy of the frozen dataclass ``base`` with the RocketMQ-named ``props`` applied."""
    assert dataclasses.is_dataclass(base) and not isinstance(base, type)
    hints = typing.get_type_hints(type(base))
    changes: dict[str, object] = {}
    for key, value in props.items():
        name = keys.get(key)
        if name is None:
            raise ConfigError(f"unknown configuration key {key!r}")
        changes[name] = _convert(key, value, hints[name])
    return dataclasses.replace(base, **changes)


def store_config(props: Mapping[str, str], base: StoreConfig) -> StoreConfig:
    return apply_keys(base, props, STORE_KEYS)


def namesrv_config(props: Mapping[str, str], base: NamesrvConfig) -> NamesrvConfig:
    return apply_keys(base, props, NAMESRV_KEYS)


def broker_config(props: Mapping[str, str], base: BrokerConfig) -> BrokerConfig:
    return broker_config_from_properties(dict(props), base)


def proxy_config(props: Mapping[str, str], base: ProxyConfig) -> ProxyConfig:
    return proxy_config_from_properties(dict(props), base)
