"""A real RemotingServer on port 0 with a tiny dispatch table, and raw-socket helpers."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from orbitmq.core.errors import BrokerError
from orbitmq.net import Connection, DispatchTable, RemotingClient, RemotingServer, ServerConfig
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.frame import FrameDecoder, encode_command_bytes


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run every test here on the standard loop and, when installed, on uvloop (the CLI's fast path):
    uvloop's transports differ in the details (no Transport subclass, their own writelines)."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


ECHO = 1
GATED = 2
FAILS = 4
BAD_FIELD = 5
REFUSES = 6
STEP_TIMEOUT_S = 5.0  # upper bound for one awaited step: a hang fails fast instead of at the suite timeout


async def until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate`` holds: for state with no event to await (a task's last step)."""
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while not predicate():
            await asyncio.sleep(0)


class Gate:
    """A handler that records who entered and holds each request until released."""

    def __init__(self) -> None:
        self.entered: list[int] = []
        self.finished: list[int] = []
        self._events: dict[int, asyncio.Event] = {}
        self._changed = asyncio.Condition()
        self._open = False

    async def __call__(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        event = self._events.setdefault(cmd.opaque, asyncio.Event())
        if self._open:
            event.set()
        async with self._changed:
            self.entered.append(cmd.opaque)
            self._changed.notify_all()
        await event.wait()
        async with self._changed:
            self.finished.append(cmd.opaque)
            self._changed.notify_all()
        return cmd.response(ext_fields={"gated": cmd.ext_fields.get("n", "")})

    def release(self, opaque: int) -> None:
        self._events.setdefault(opaque, asyncio.Event()).set()

    def release_all(self) -> None:
        self._open = True
        for event in self._events.values():
            event.set()

    async def wait_entered(self, n: int) -> None:
        await self._wait(lambda: len(self.entered) >= n)

    async def wait_finished(self, n: int) -> None:
        await self._wait(lambda: len(self.finished) >= n)

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(STEP_TIMEOUT_S), self._changed:
            await self._changed.wait_for(predicate)


async def echo(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
    # Yield a request-dependent number of times so pipelined responses finish out of order.
    for _ in range(int(cmd.ext_fields.get("n", "0") or 0) % 7):
        await asyncio.sleep(0)
    return cmd.response(ext_fields={"n": cmd.ext_fields.get("n", "")}, body=cmd.body)


async def fails(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
    raise RuntimeError("disk on fire")


async def bad_field(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
    cmd.int_field("queueId")  # missing or malformed → ProtocolError
    return cmd.response()


async def refuses(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
    raise BrokerError(17, "No topic route info in name server for the topic: T")


class Harness:
    def __init__(self, server: RemotingServer, gate: Gate) -> None:
        self.server = server
        self.gate = gate

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.server.port}"


def make_dispatch(gate: Gate) -> DispatchTable:
    table = DispatchTable()
    table.register(ECHO, echo)
    table.register(GATED, gate)
    table.register(FAILS, fails)
    table.register(BAD_FIELD, bad_field)
    table.register(REFUSES, refuses)
    return table


ServerFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    started: list[Harness] = []

    async def factory(**config: Any) -> Harness:
        gate = Gate()
        server = RemotingServer(ServerConfig(port=0, **config), make_dispatch(gate))
        await server.start()
        harness = Harness(server, gate)
        started.append(harness)
        return harness

    yield factory
    for h in started:
        h.gate.release_all()
        await h.server.stop()


@pytest.fixture
async def harness(make_server: ServerFactory) -> Harness:
    return await make_server()


@pytest.fixture
async def client() -> AsyncIterator[RemotingClient]:
    c = RemotingClient()
    yield c
    await c.close()


def request(
    code: int, n: int | str = "", body: bytes = b"", *, opaque: int = 0, flag: int = 0
) -> RemotingCommand:
    return RemotingCommand(code=code, opaque=opaque, flag=flag, ext_fields={"n": str(n)}, body=body)


class RawPeer:
    """A hand-driven TCP peer: writes any bytes, reads frames back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(detect_foreign_protocols=False)

    @classmethod
    async def connect(cls, addr: str) -> RawPeer:
        host, port = addr.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_commands(self, *cmds: RemotingCommand) -> None:
        await self.send(b"".join(encode_command_bytes(c) for c in cmds))

    async def read_command(self) -> RemotingCommand:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while (cmd := self.decoder.next_command()) is None:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("server closed the connection")
                self.decoder.feed(data)
            return cmd

    async def wait_closed_by_server(self) -> bytes:
        """Everything the server sent until it closed the connection (fails if it never does)."""
        chunks = []
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def raw_peers() -> AsyncIterator[Callable[[str], Awaitable[RawPeer]]]:
    peers: list[RawPeer] = []

    async def connect(addr: str) -> RawPeer:
        peer = await RawPeer.connect(addr)
        peers.append(peer)
        return peer

    yield connect
    for p in peers:
        p.close()


def raw_frame(header: bytes, body: bytes = b"", serialize_type: int = 0) -> bytes:
    return (
        struct.pack(">iI", 4 + len(header) + len(body), (serialize_type << 24) | len(header)) + header + body
    )
