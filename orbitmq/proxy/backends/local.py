"""Local mode (``orbitmq standalone``): the proxy calls an in-process broker without a socket.

A request goes straight into the broker's handler table (:func:`orbitmq.net.handle_request`) with a
:class:`Connection` that stands for the proxy: no encoding, no copy, the same handlers and answers as over
TCP. The broker's handler runs as its own task, so a gRPC call cancelled by its client never cancels a
broker handler half-way (the answer is dropped, as a late answer over TCP would be).

That connection is one end of an in-memory pipe whose other end is served by :attr:`Backend.dispatch`, so
what a broker sends to "its client" (CHECK_TRANSACTION_STATE to the producer group the proxy registered)
reaches the proxy exactly as in cluster mode. Only this module of the proxy may import the broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.topics import is_readable, is_writeable
from orbitmq.client.model import MessageQueue
from orbitmq.client.routing import TopicRoute
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.core.limits import FRAME_BYTES_MAX, INFLIGHT_REQUESTS_PER_CONNECTION_MAX
from orbitmq.net import Connection, NetCounters, handle_request
from orbitmq.net.connection import new_connection_id
from orbitmq.net.dispatch import DispatchTable
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.frame import java_text
from orbitmq.proxy.backends.base import Backend

__all__ = ["LocalBackend"]


class _PipeEnd(asyncio.Transport):
    """One end of an in-memory byte pipe: what is written here is received by the peer's protocol."""

    def __init__(self, name: tuple[str, int], peer_name: tuple[str, int]) -> None:
        super().__init__()
        self._name, self._peer_name = name, peer_name
        self.peer: _PipeEnd | None = None
        self.protocol: asyncio.Protocol | None = None
        self._closing = False
        self._loop = asyncio.get_running_loop()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._peer_name, "sockname": self._name}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self.peer is None or self.peer.protocol is None:
            return
        self._loop.call_soon(self.peer.protocol.data_received, bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(bytes(d) for d in list_of_data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for end in (self, self.peer):
            if end is not None and end.protocol is not None:
                end._closing = True
                self._loop.call_soon(end.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def pause_reading(self) -> None:  # the pipe never overruns: data is handed over once per write
        pass

    def resume_reading(self) -> None:
        pass


def _connection(dispatch: DispatchTable, tasks: set[asyncio.Task[None]]) -> Connection:
    return Connection(
        new_connection_id(), dispatch, frame_bytes_max=FRAME_BYTES_MAX,
        inflight_requests_max=INFLIGHT_REQUESTS_PER_CONNECTION_MAX, idle_timeout_s=None,
        counters=NetCounters(), tasks=tasks,
    )  # fmt: skip


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, broker: BrokerApp, *, proxy_addr: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        super().__init__()
        self.broker = broker
        self._proxy_addr = proxy_addr
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[RemotingCommand | None]] = set()
        self._broker_side: Connection | None = None
        self._proxy_side: Connection | None = None

    @property
    def broker_name(self) -> str:
        return self.broker.config.broker_name

    async def start(self) -> None:
        broker_addr = ("127.0.0.1", self.broker.port)
        broker_side = _connection(self.broker.dispatch, self._tasks)
        proxy_side = _connection(self.dispatch, self._tasks)
        a, b = _PipeEnd(broker_addr, self._proxy_addr), _PipeEnd(self._proxy_addr, broker_addr)
        a.peer, b.peer = b, a
        a.protocol, b.protocol = broker_side, proxy_side
        broker_side.connection_made(a)
        proxy_side.connection_made(b)
        self._broker_side, self._proxy_side = broker_side, proxy_side

    async def stop(self) -> None:
        if self._broker_side is not None:
            self._broker_side.close()
            await self._broker_side.wait_closed()
        for task in list(self._handlers) + list(self._tasks):
            task.cancel()
        if self._handlers or self._tasks:
            await asyncio.wait(set(self._handlers) | set(self._tasks))

    async def route(self, topic: str, *, refresh: bool = False) -> TopicRoute:
        tc = self.broker.topics.select_topic_config(topic)
        if tc is None:
            raise BrokerError(
                ResponseCode.TOPIC_NOT_EXIST, f"No topic route info in name server for the topic: {topic}"
            )
        name, perm = self.broker_name, tc.perm & self.broker.config.broker_permission
        pub = (
            tuple(MessageQueue(topic, name, q) for q in range(tc.write_queue_nums))
            if is_writeable(perm)
            else ()
        )
        sub = (
            tuple(MessageQueue(topic, name, q) for q in range(tc.read_queue_nums))
            if is_readable(perm)
            else ()
        )
        return TopicRoute(
            topic, pub, sub, {name: {0: self.broker.address}}, {name: self.broker.config.broker_cluster_name}
        )

    async def invoke(self, broker_name: str, cmd: RemotingCommand, timeout_s: float) -> RemotingCommand:
        conn = self._broker_side
        if conn is None or conn.closed:
            raise ClientError("the local backend is not running")
        if broker_name != self.broker_name:
            raise ClientError(f"no broker named {broker_name!r} in this process (it is {self.broker_name!r})")
        task = asyncio.get_running_loop().create_task(handle_request(self.broker.dispatch, cmd, conn))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            async with asyncio.timeout(timeout_s):
                response = await asyncio.shield(task)
        except TimeoutError:
            raise ClientError(
                f"request code {cmd.code} to the local broker timed out after {timeout_s:g}s"
            ) from None
        if response is None:
            raise ClientError(f"the local broker sent no response to request code {cmd.code}")
        # What a socket would have done: fields as Java strings, the body copied out of the log's pages.
        response.ext_fields = {k: java_text(v) for k, v in response.ext_fields.items() if v is not None}
        if not isinstance(response.body, bytes):
            response.body = response.body_bytes()
        return response

    def broker_names(self) -> list[str]:
        return [self.broker_name]

    def broker_name_of(self, addr: str) -> str | None:
        return self.broker_name
