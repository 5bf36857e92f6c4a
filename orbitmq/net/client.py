"""The remoting client: one lazily made connection per ``host:port``, requests matched by opaque.

Unlike ali-ons, a request that times out does not close the socket: the other requests multiplexed on it
(held pulls above all) are unaffected, and a late response is simply dropped.
"""

from __future__ import annotations

import asyncio
import logging

from orbitmq.core.errors import ClientError
from orbitmq.core.limits import FRAME_BYTES_MAX, INFLIGHT_REQUESTS_PER_CONNECTION_MAX
from orbitmq.net.connection import Connection, NetCounters, new_connection_id
from orbitmq.net.dispatch import DispatchTable
from orbitmq.protocol.codes import Version
from orbitmq.protocol.command import RemotingCommand

__all__ = ["RemotingClient", "parse_addr"]

log = logging.getLogger("orbitmq.net")


def parse_addr(addr: str) -> tuple[str, int]:
    """``"host:port"`` → (host, port); RocketMQ addresses are IPv4 or names, split on the last colon."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ClientError(f"invalid remoting address {addr!r}: expected host:port")
    return host, int(port)


class RemotingClient:
    """Sends requests to remoting servers; server-initiated requests go to ``dispatch``."""

    def __init__(
        self,
        *,
        dispatch: DispatchTable | None = None,
        connect_timeout_s: float = 3.0,
        frame_bytes_max: int = FRAME_BYTES_MAX,
        inflight_requests_max: int = INFLIGHT_REQUESTS_PER_CONNECTION_MAX,
    ) -> None:
        self.dispatch = dispatch if dispatch is not None else DispatchTable()
        self.connect_timeout_s = connect_timeout_s
        self.frame_bytes_max = frame_bytes_max
        self.inflight_requests_max = inflight_requests_max
        self.counters = NetCounters()
        self._connections: dict[str, Connection] = {}
        self._connecting: dict[str, asyncio.Task[Connection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- requests ---------------------------------------------------------------------------------------
    async def invoke(self, addr: str, cmd: RemotingCommand, timeout_s: float) -> RemotingCommand:
        """Send ``cmd`` to ``addr`` and return the response; ClientError on timeout, connect failure or close.

        ``timeout_s`` covers connecting too. The response may carry any code: checking it is the caller's job.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        conn = await self.connection(addr, timeout_s=min(self.connect_timeout_s, timeout_s))
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise ClientError(
                f"request code {cmd.code} to {addr} timed out after {timeout_s:g}s (connecting)"
            )
        self._stamp(cmd)
        return await conn.request(cmd, remaining)

    async def invoke_oneway(self, addr: str, cmd: RemotingCommand) -> None:
        conn = await self.connection(addr)
        self._stamp(cmd)
        conn.send_oneway(cmd)

    @staticmethod
    def _stamp(cmd: RemotingCommand) -> None:
        # The language stays the command's own (PYTHON unless a proxy speaks for a client of another one).
        cmd.version = int(Version.V5_3_3)

    # -- connections ------------------------------------------------------------------------------------
    async def connection(self, addr: str, timeout_s: float | None = None) -> Connection:
        """The open connection to ``addr``, connecting (once, however many callers ask) if there is none."""
        if self._closed:
            raise ClientError("remoting client is closed")
        conn = self._connections.get(addr)
        if conn is not None and not conn.closed:
            return conn
        task = self._connecting.get(addr)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(addr))
            self._connecting[addr] = task
            task.add_done_callback(lambda t: self._connect_done(addr, t))
        timeout = self.connect_timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(task)
        except TimeoutError:
            raise ClientError(f"connect to {addr} timed out after {timeout:g}s") from None

    async def _connect(self, addr: str) -> Connection:
        host, port = parse_addr(addr)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(self._new_connection, host, port)
        except TimeoutError:
            raise ClientError(f"connect to {addr} timed out after {self.connect_timeout_s:g}s") from None
        except OSError as exc:
            raise ClientError(f"connect to {addr} failed: {exc}") from exc
        if self._closed:
            conn.abort()
            raise ClientError("remoting client is closed")
        self._connections[addr] = conn
        conn.add_close_callback(lambda c: self._forget(addr, c))
        log.debug("connected to %s as %r", addr, conn)
        return conn

    def _connect_done(self, addr: str, task: asyncio.Task[Connection]) -> None:
        if self._connecting.get(addr) is task:
            del self._connecting[addr]
        if not task.cancelled():
            task.exception()  # retrieved here so a failure nobody waited for is not reported as lost

    def _forget(self, addr: str, conn: Connection) -> None:
        if self._connections.get(addr) is conn:
            del self._connections[addr]

    def _new_connection(self) -> Connection:
        return Connection(
            new_connection_id(),
            self.dispatch,
            frame_bytes_max=self.frame_bytes_max,
            inflight_requests_max=self.inflight_requests_max,
            idle_timeout_s=None,
            counters=self.counters,
            tasks=self._tasks,
        )

    async def close_connection(self, addr: str) -> None:
        """Close the connection to ``addr`` (the next request to it reconnects)."""
        conn = self._connections.pop(addr, None)
        if conn is not None:
            conn.close()
            await _wait_closed(conn)

    async def close(self) -> None:
        """Close every connection; further requests raise ClientError. Idempotent."""
        self._closed = True
        for connecting in list(self._connecting.values()):
            connecting.cancel()
        conns = list(self._connections.values())
        self._connections.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            await _wait_closed(conn)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    @property
    def addresses(self) -> list[str]:
        """Addresses with an open connection."""
        return [a for a, c in self._connections.items() if not c.closed]


async def _wait_closed(conn: Connection, timeout_s: float = 1.0) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await conn.wait_closed()
    except TimeoutError:
        conn.abort()  # the peer does not read what we flush; do not wait for it
