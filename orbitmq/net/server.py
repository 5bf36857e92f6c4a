"""The remoting server: a listening socket, its connections, and their request tasks, as one Service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from orbitmq.core.errors import ConfigError
from orbitmq.core.limits import CONNECTION_IDLE_S_MAX, FRAME_BYTES_MAX, INFLIGHT_REQUESTS_PER_CONNECTION_MAX
from orbitmq.core.service import Service
from orbitmq.net.connection import Connection, NetCounters, new_connection_id
from orbitmq.net.dispatch import DispatchTable

__all__ = ["RemotingServer", "ServerConfig"]

log = logging.getLogger("orbitmq.net")

ConnectionCallback = Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    #: Address to listen on (RocketMQ binds all interfaces; OrbitMQ defaults to loopback).
    host: str = "127.0.0.1"
    #: ``listenPort``; 0 picks a free port (read it back from :attr:`RemotingServer.port`).
    port: int = 0
    #: ``com.rocketmq.remoting.frameMaxLength``: largest frame, its 4-byte length prefix included.
    frame_bytes_max: int = FRAME_BYTES_MAX
    #: ``serverChannelMaxIdleTimeSeconds``: close a connection with no traffic either way for this long.
    idle_timeout_s: float = CONNECTION_IDLE_S_MAX
    #: Requests one connection may have running before the server stops reading from it.
    inflight_requests_max: int = INFLIGHT_REQUESTS_PER_CONNECTION_MAX
    #: Name of the service in logs (e.g. "broker-a remoting").
    name: str = "remoting"
    #: On stop, how long running requests may take to finish before they are cancelled.
    shutdown_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"listenPort {self.port} is not a TCP port")
        if self.frame_bytes_max < 16:
            raise ConfigError(f"frameMaxLength {self.frame_bytes_max} is too small")
        if self.idle_timeout_s <= 0:
            raise ConfigError(f"serverChannelMaxIdleTimeSeconds {self.idle_timeout_s} must be positive")
        if self.inflight_requests_max < 1:
            raise ConfigError(f"inflight_requests_max {self.inflight_requests_max} must be at least 1")


class RemotingServer(Service):
    """Serves remoting requests with a :class:`DispatchTable`.

    ``on_connect(conn)`` / ``on_disconnect(conn)`` run when a connection opens / after it closed.
    """

    has_task = False

    def __init__(
        self,
        config: ServerConfig,
        dispatch: DispatchTable,
        *,
        on_connect: ConnectionCallback | None = None,
        on_disconnect: ConnectionCallback | None = None,
    ) -> None:
        super().__init__(config.name)
        self.config = config
        self.dispatch = dispatch
        self.counters = NetCounters()
        #: The port actually listened on (the configured one, or the one port 0 picked).
        self.port = config.port
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._server: asyncio.Server | None = None
        self._connections: dict[int, Connection] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> list[Connection]:
        """The open connections (a snapshot)."""
        return list(self._connections.values())

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._new_connection, self.config.host, self.config.port)
        except OSError as exc:
            raise ConfigError(
                f"listenPort {self.config.port}: cannot listen on {self.config.host}: {exc}"
            ) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s listening on %s:%d", self.name, self.config.host, self.port)

    async def on_stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in self.connections:
            conn._stop_reading()
        if self._tasks:
            _, still_running = await asyncio.wait(set(self._tasks), timeout=self.config.shutdown_grace_s)
            for task in still_running:
                task.cancel()
            if still_running:
                log.warning(
                    "%s: cancelled %d requests still running at shutdown", self.name, len(still_running)
                )
                await asyncio.wait(still_running)
        conns = self.connections
        for conn in conns:
            conn.close()
        if conns:
            waiters = [asyncio.ensure_future(c.wait_closed()) for c in conns]
            _, slow = await asyncio.wait(waiters, timeout=1.0)
            for w in slow:
                w.cancel()
            for conn in self.connections:  # peers that do not read what we flush
                conn.abort()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)
        log.info("%s stopped", self.name)

    def _new_connection(self) -> Connection:
        conn = Connection(
            new_connection_id(),
            self.dispatch,
            frame_bytes_max=self.config.frame_bytes_max,
            inflight_requests_max=self.config.inflight_requests_max,
            idle_timeout_s=self.config.idle_timeout_s,
            counters=self.counters,
            tasks=self._tasks,
            detect_foreign_protocols=True,
            on_open=self._connection_opened,
        )
        conn.add_close_callback(self._connection_closed)
        return conn

    def _connection_opened(self, conn: Connection) -> None:
        self._connections[conn.id] = conn
        log.debug("%s: accepted %r", self.name, conn)
        if self._on_connect is not None:
            try:
                self._on_connect(conn)
            except Exception:
                log.exception("%s: on_connect failed for %r", self.name, conn)

    def _connection_closed(self, conn: Connection) -> None:
        if self._connections.pop(conn.id, None) is None:
            return
        if self._on_disconnect is not None:
            self._on_disconnect(conn)  # exceptions are logged by the connection's callback runner
