"""Registration with the NameServers (RocketMQ ``BrokerController.registerBrokerAll`` / ``BrokerOuterAPI``).

The broker sends REGISTER_BROKER (103) with its whole topic table to every NameServer of ``namesrvAddr``:
once at start, every ``registerNameServerPeriod`` (30 s; NameServers drop a broker silent for 120 s), and as
soon as a topic is created, changed or deleted (so a new ``%RETRY%`` topic is routable before the client
asks for its route). At stop it sends UNREGISTER_BROKER (104). The body is the standard-JSON
``RegisterBrokerBody`` (uncompressed), with its CRC32 in the header.

A NameServer that is down or slow is logged and retried at the next period; it never stops the broker.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Any

import orjson

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.longpoll import sleep_unless_woken
from orbitmq.broker.topics import TopicConfigManager
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ClientError
from orbitmq.core.service import Service
from orbitmq.net.client import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["BrokerRegistrationService", "register_broker_body"]

log = logging.getLogger("orbitmq.broker.registration")


def register_broker_body(topic_config_wrapper: dict[str, Any]) -> bytes:
    """The uncompressed REGISTER_BROKER body: ``{"filterServerList":[],"topicConfigSerializeWrapper":...}``."""
    return orjson.dumps({"filterServerList": [], "topicConfigSerializeWrapper": topic_config_wrapper})


class BrokerRegistrationService(Service):
    """Keeps this broker registered with every NameServer of ``namesrvAddr``."""

    def __init__(
        self,
        config: BrokerConfig,
        topics: TopicConfigManager,
        client: RemotingClient,
        clock: Clock,
        address: Callable[[], str],
    ) -> None:
        super().__init__("BrokerRegistrationService")
        self.config = config
        self.topics = topics
        self.client = client
        self.clock = clock
        self.address = address
        self._lock = asyncio.Lock()
        #: Successful REGISTER_BROKER answers since start (tests and metrics read it).
        self.registrations = 0

    # -- registration ----------------------------------------------------------------------------------
    def request_registration(self) -> None:
        """Register again as soon as possible (a topic changed); does not wait."""
        if self.running:
            self.wakeup()

    async def register_now(self, timeout_s: float) -> bool:
        """Register with every NameServer, waiting at most ``timeout_s``; True if all accepted in time."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.register_all()
        except TimeoutError:
            log.warning("registration with the NameServers did not finish within %.1fs", timeout_s)
            return False

    async def register_all(self) -> bool:
        """One REGISTER_BROKER to every NameServer, concurrently; True if every one answered SUCCESS."""
        if not self.config.namesrv_addr:
            return True
        async with self._lock:
            body = register_broker_body(self.topics.topic_config_wrapper())
            ext = self._header(
                haServerAddr=f"{self.config.broker_ip1}:{self._port() + 1}",
                compressed="false",
                bodyCrc32=str(zlib.crc32(body) & 0x7FFFFFFF),
                enableActingMaster="false",
            )
            results = await asyncio.gather(
                *(self._send(ns, RequestCode.REGISTER_BROKER, ext, body) for ns in self.config.namesrv_addr)
            )
        ok = sum(results)
        self.registrations += ok
        return ok == len(results)

    async def unregister_all(self) -> None:
        if not self.config.namesrv_addr:
            return
        ext = self._header()
        await asyncio.gather(
            *(self._send(ns, RequestCode.UNREGISTER_BROKER, ext, b"") for ns in self.config.namesrv_addr)
        )

    def _port(self) -> int:
        return int(self.address().rpartition(":")[2])

    def _header(self, **extra: str) -> dict[str, str]:
        return {
            "brokerName": self.config.broker_name,
            "brokerAddr": self.address(),
            "clusterName": self.config.broker_cluster_name,
            "brokerId": str(self.config.broker_id),
            **extra,
        }

    async def _send(self, namesrv: str, code: int, ext: dict[str, str], body: bytes) -> bool:
        timeout = self.config.register_broker_timeout_mills / 1000
        try:
            response = await self.client.invoke(
                namesrv, RemotingCommand.request(code, dict(ext), body), timeout
            )
        except ClientError as exc:
            log.warning("%s to NameServer %s failed: %s", RequestCode(code).name, namesrv, exc)
            return False
        if response.code != ResponseCode.SUCCESS:
            log.warning("%s to NameServer %s answered %d: %s", RequestCode(code).name, namesrv,
                        response.code, response.remark)  # fmt: skip
            return False
        return True

    # -- lifecycle -------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        if not await self.register_all():
            log.warning("broker %s not registered with every NameServer at start; retrying every %d ms",
                        self.config.broker_name, self.config.register_name_server_period)  # fmt: skip

    async def run(self) -> None:
        while not self.stopping:
            await self._sleep(self.config.register_name_server_period / 1000)
            if self.stopping:
                return
            try:
                await self.register_all()
            except Exception:
                log.exception("registering with the NameServers failed")

    async def on_stop(self) -> None:
        await self.unregister_all()

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless_woken(self.clock, self._wakeup, seconds)
