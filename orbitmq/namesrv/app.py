"""The NameServer application: a remoting server over the route table, plus the broker expiry scan.

``NamesrvApp`` is a :class:`Service` (start/stop), so a standalone process can put it into its own
ServiceGroup; several can run side by side in one process (tests, multi-NameServer setups).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from orbitmq.core.clock import Clock, RealClock
from orbitmq.core.service import Service, ServiceGroup
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.namesrv.handlers import NamesrvHandlers
from orbitmq.namesrv.kvconfig import KvConfigTable
from orbitmq.namesrv.routes import RouteTable, UnregisteredBroker
from orbitmq.net import Connection, DispatchTable, RemotingServer, ServerConfig

__all__ = ["BrokerExpiryService", "NamesrvApp", "NamesrvConfig"]

log = logging.getLogger("orbitmq.namesrv")


class BrokerExpiryService(Service):
    """Every ``scanNotActiveBrokerInterval``, remove brokers silent for longer than their timeout.

    Java also closes the expired broker's channel; ``on_expired`` does that (and logs) for each one.
    """

    def __init__(
        self,
        routes: RouteTable,
        clock: Clock,
        interval_ms: int,
        on_expired: Callable[[UnregisteredBroker], None],
    ) -> None:
        super().__init__("namesrv broker expiry")
        self.routes = routes
        self.clock = clock
        self.interval_s = interval_ms / 1000
        self.on_expired = on_expired
        self._runner: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        # Sleep on the clock directly (no helper tasks), so a FakeClock.advance() over several intervals
        # runs one scan per interval, each at its own time.
        self._runner = asyncio.current_task()
        try:
            while not self.stopping:
                await self.clock.sleep(self.interval_s)
                try:
                    self.scan()
                except Exception:  # one bad scan must not end expiry for good
                    log.exception("broker expiry scan failed")
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            # stop() interrupted the sleep (see wakeup): a normal end, not a failure.

    def wakeup(self) -> None:
        super().wakeup()
        if self.stopping and self._runner is not None and not self._runner.done():
            self._runner.cancel()

    def scan(self) -> list[UnregisteredBroker]:
        expired = self.routes.scan_not_active_brokers(self.clock.now_ms())
        for gone in expired:
            self.on_expired(gone)
        return expired


class NamesrvApp(Service):
    """One NameServer: ``await start()``, ``.port``, ``.addr``, ``await stop()``."""

    has_task = False

    def __init__(self, config: NamesrvConfig | None = None, *, clock: Clock | None = None) -> None:
        super().__init__("namesrv")
        self.config = config if config is not None else NamesrvConfig()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.routes = RouteTable(self.config.broker_channel_expired_time_ms)
        self.kv = KvConfigTable()
        self.handlers = NamesrvHandlers(self.config, self.routes, self.kv, self.clock)
        self.dispatch = DispatchTable()
        self.handlers.register_all(self.dispatch)
        self.server = RemotingServer(
            ServerConfig(host=self.config.host, port=self.config.port, name="namesrv remoting"),
            self.dispatch,
            on_disconnect=self._on_disconnect,
        )
        self.expiry = BrokerExpiryService(
            self.routes, self.clock, self.config.scan_not_active_broker_interval_ms, self._on_expired
        )
        self._services = ServiceGroup([self.server, self.expiry])
        #: Brokers removed because they stopped registering / whose connection closed (metrics read these).
        self.brokers_expired = 0
        self.brokers_disconnected = 0

    @property
    def port(self) -> int:
        """The port listened on (the configured one, or the free port that port 0 picked)."""
        return self.server.port

    @property
    def addr(self) -> str:
        """``host:port`` as brokers and clients write ``namesrvAddr``."""
        return f"{self.config.host}:{self.port}"

    async def on_start(self) -> None:
        await self._services.start()

    async def on_stop(self) -> None:
        await self._services.stop()

    def _on_disconnect(self, conn: Connection) -> None:
        # The broker registered under its own advertised address, not the socket's peer address: the
        # route table remembers which connection each registration came over.
        for gone in self.routes.on_channel_destroy(conn):
            self.brokers_disconnected += 1
            log.info(
                "broker unregistered (connection closed): %s id %s at %s in cluster %s",
                gone.broker_name, gone.broker_id, gone.broker_addr, gone.cluster_name,
                extra={"event": "broker_disconnected", "broker": gone.broker_name, "addr": gone.broker_addr},
            )  # fmt: skip

    def _on_expired(self, gone: UnregisteredBroker) -> None:
        self.brokers_expired += 1
        log.warning(
            "broker expired (silent for over %d ms): %s id %s at %s in cluster %s",
            self.config.broker_channel_expired_time_ms, gone.broker_name, gone.broker_id, gone.broker_addr,
            gone.cluster_name,
            extra={"event": "broker_expired", "broker": gone.broker_name, "addr": gone.broker_addr},
        )  # fmt: skip
        if isinstance(gone.channel, Connection) and not gone.channel.closed:
            gone.channel.close()
