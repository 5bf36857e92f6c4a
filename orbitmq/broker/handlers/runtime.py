"""The broker's own state for admins: GET_BROKER_RUNTIME_INFO (28), GET_BROKER_CONFIG (26) and
UPDATE_BROKER_CONFIG (25).

UPDATE_BROKER_CONFIG takes a ``key=value`` properties body. Only :data:`RUNTIME_KEYS` can change while the
broker runs; the whole request is refused, nothing changed, when any key is outside that set:

- a key that names a file, a directory, a program or a network endpoint (``storePathRootDir``,
  ``rocketmqHome``, ``brokerConfigPath``, ``namesrvAddr``, anything ending in ``Path``/``Dir``/``Home`` ...)
  → NO_PERMISSION. Nothing that arrives over the network may point the broker at a path or a command: that
  is how CVE-2023-33246 turned RocketMQ's config update into remote code execution;
- any other known key → NO_PERMISSION ("restart with it in the config file");
- an unknown key → INVALID_PARAMETER; a bad value → INVALID_PARAMETER naming it.

GET_BROKER_RUNTIME_INFO's ``table`` carries upstream's keys where OrbitMQ has the value: versions, boot
time, commit-log offsets, ``putTps`` / ``getTransferredTps`` (``"10s 60s 600s"`` averages),
``commitLogDiskRatio`` (used / total of the store's file system) and ``commitLogDirCapacity``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from typing import Final

import orjson

from orbitmq.broker.config import BROKER_PROPERTY_NAMES, broker_config_from_properties
from orbitmq.broker.handlers.admin import properties_text
from orbitmq.broker.handlers.context import BrokerContext, java_fields
from orbitmq.core.errors import BrokerError, ConfigError
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode, Version
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "FORBIDDEN_KEYS",
    "RUNTIME_KEYS",
    "RuntimeHandlers",
    "check_runtime_update",
    "parse_properties_body",
]

log = logging.getLogger("orbitmq.broker.runtime")

#: Broker keys an admin may change at run time: each is read on every use, none names a path or a peer.
RUNTIME_KEYS: Final = frozenset({
    "brokerPermission",
    "autoCreateTopicEnable",
    "autoCreateSubscriptionGroup",
    "longPollingEnable",
    "shortPollingTimeMills",
    "notifyConsumerIdsChangedEnable",
    "channelExpiredTimeout",
    "subscriptionExpiredTimeout",
    "traceOn",
    "useServerSideResetOffset",
})  # fmt: skip

#: Keys refused as naming a file, a program or a network endpoint (besides the name pattern below).
FORBIDDEN_KEYS: Final = frozenset({
    "rocketmqHome", "brokerConfigPath", "configBlackList", "storePathRootDir", "storePathCommitLog",
    "storePathConsumeQueue", "storePathIndex", "storeCheckpoint", "abortFile", "kvConfigPath",
    "configStorePath", "filterServerNums", "namesrvAddr", "brokerIP1", "brokerIP2", "listenPort",
    "haListenPort", "fetchNamesrvAddrByAddressServer", "rmqAddressServerDomain", "rmqAddressServerSubGroup",
})  # fmt: skip
#: A key with one of these camelCase words (``storePathRootDir``, ``abortFile``) is refused too.
_FORBIDDEN_WORDS: Final = frozenset(
    {"path", "dir", "home", "file", "command", "cmd", "script", "exec", "shell"}
)


def _names_path_or_command(key: str) -> bool:
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", key)
    return key in FORBIDDEN_KEYS or any(w.lower() in _FORBIDDEN_WORDS for w in words)


def parse_properties_body(text: str) -> dict[str, str]:
    """Java ``Properties`` text (``key=value`` or ``key:value`` lines, ``#``/``!`` comments) → dict."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if match is None:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, f"line {number} is not key=value: {raw!r}")
        out[match.group(1)] = match.group(2).strip()
    return out


def check_runtime_update(keys: list[str]) -> BrokerError | None:
    """Why these keys cannot be changed at run time (the first refused key), or None when all can."""
    for key in keys:
        if _names_path_or_command(key):
            return BrokerError(
                ResponseCode.NO_PERMISSION,
                f"Can not update config in black list: {key} names a file, a program or a network "
                "endpoint, which no request may change (CVE-2023-33246)",
            )
    for key in keys:
        if key not in BROKER_PROPERTY_NAMES:
            return BrokerError(ResponseCode.INVALID_PARAMETER, f"unknown broker config key {key!r}")
        if key not in RUNTIME_KEYS:
            return BrokerError(
                ResponseCode.NO_PERMISSION,
                f"{key} cannot be changed at run time; set it in the broker's config file and restart "
                f"(changeable: {', '.join(sorted(RUNTIME_KEYS))})",
            )
    return None


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} TiB"


class RuntimeHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.GET_BROKER_RUNTIME_INFO: self.get_broker_runtime_info,
            RequestCode.GET_BROKER_CONFIG: self.get_broker_config,
            RequestCode.UPDATE_BROKER_CONFIG: self.update_broker_config,
        }

    async def get_broker_runtime_info(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        ctx, store = self.ctx, self.ctx.store
        uptime_s = max(0, (ctx.now_ms - ctx.boot_timestamp_ms) // 1000)
        days, rest = divmod(uptime_s, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        table = java_fields(
            brokerVersionDesc=Version.V5_3_3.name,
            brokerVersion=int(Version.V5_3_3),
            bootTimestamp=ctx.boot_timestamp_ms,
            runtime=f"[ {days} days, {hours} hours, {minutes} minutes, {seconds} seconds ]",
            commitLogMinOffset=store.min_physical_offset,
            commitLogMaxOffset=store.max_physical_offset,
            dispatchBehindBytes=max(0, store.max_physical_offset - store.dispatched_offset),
            pullHeldRequests=ctx.long_polling.held_count,
            brokerActive=True,
        )
        if ctx.rates is not None:
            table["putTps"] = ctx.rates.put.tps_text()
            table["getTransferredTps"] = ctx.rates.get.tps_text()
        try:
            usage = await asyncio.to_thread(shutil.disk_usage, store.config.store_path_root_dir)
        except OSError as exc:
            log.info("disk usage of %s unknown: %s", store.config.store_path_root_dir, exc)
        else:
            table["commitLogDiskRatio"] = f"{usage.used / usage.total:.4f}" if usage.total else "0.0"
            table["commitLogDirCapacity"] = (
                f"Total : {_human_bytes(usage.total)}, Free : {_human_bytes(usage.free)}."
            )
        return cmd.response(body=orjson.dumps({"table": table}))

    async def get_broker_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        cfg = self.ctx.config
        values = {prop: getattr(cfg, name) for prop, name in BROKER_PROPERTY_NAMES.items()}
        values["listenPort"] = int(self.ctx.address.rpartition(":")[2])
        version = orjson.dumps(self.ctx.topics.data_version.to_json()).decode()
        return cmd.response(ext_fields={"version": version}, body=properties_text(values).encode())

    async def update_broker_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        try:
            text = cmd.body_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, "config body is not UTF-8 text") from None
        props = parse_properties_body(text)
        host, port = conn.remote_addr
        refused = check_runtime_update(sorted(props))
        if refused is not None:
            log.warning("refused config update %s from %s:%d: %s", props, host, port, refused.remark)
            raise refused
        if not props:
            return cmd.response()
        try:
            new = broker_config_from_properties(props, self.ctx.config)
        except ConfigError as exc:
            raise BrokerError(ResponseCode.INVALID_PARAMETER, str(exc)) from exc
        if self.ctx.reconfigure is None:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, "this broker cannot change its config at run time")
        self.ctx.reconfigure(new)
        log.info("broker config changed by %s:%d: %s", host, port, props)
        return cmd.response()
