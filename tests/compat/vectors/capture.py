"""A recording TCP relay for capturing golden remoting frames from real clients.

The relay listens on a local port, forwards every connection to a target host:port unchanged, and records each
remoting frame in both directions, split by its 4-byte length prefix (reference §1.2). Frames whose header is
JSON (serializeType 0) are also decoded for reading; the raw hex is what tests compare against.

Use from Python (tests)::

    async with CaptureRelay("127.0.0.1", namesrv_port) as relay:
        ...point the client at relay.address...
    relay.save(path)                     # JSON: {"frames": [...]}; load_capture(path) reads it back

or from a shell (see README.md)::

    python -m tests.compat.vectors.capture --target 127.0.0.1:9876 --out vectors/x.json [--listen 127.0.0.1:0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CLIENT_TO_SERVER",
    "SERVER_TO_CLIENT",
    "CaptureRelay",
    "CapturedFrame",
    "FrameSplitter",
    "decode_header",
    "load_capture",
    "main",
]

CLIENT_TO_SERVER = "c2s"
SERVER_TO_CLIENT = "s2c"

#: RocketMQ's own frame limit (com.rocketmq.remoting.frameMaxLength); a longer prefix means the stream
#: is not remoting, and the relay then keeps forwarding but stops splitting that direction.
FRAME_MAX = 16 * 1024 * 1024


@dataclass(slots=True)
class CapturedFrame:
    """One frame as it crossed the relay. ``hex`` is the whole frame including its length prefix."""

    conn: int
    direction: str
    seq: int
    hex: str
    header: dict[str, Any] | None = None
    body_length: int = 0
    ts: float = field(default_factory=time.time)

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex)

    @property
    def code(self) -> int | None:
        return None if self.header is None else self.header.get("code")

    @property
    def flag(self) -> int | None:
        return None if self.header is None else self.header.get("flag")

    @property
    def opaque(self) -> int | None:
        return None if self.header is None else self.header.get("opaque")

    @property
    def ext_fields(self) -> dict[str, Any]:
        return {} if self.header is None else dict(self.header.get("extFields") or {})

    @property
    def is_response(self) -> bool:
        return bool((self.flag or 0) & 1)


def decode_header(frame: bytes) -> tuple[dict[str, Any] | None, int]:
    """(JSON header or None, body length) of one whole frame. None when the header is not JSON-typed or
    does not parse: the relay records such frames raw and never fails on them."""
    if len(frame) < 8:
        return None, 0
    total, mark = struct.unpack_from(">iI", frame)
    serialize_type, header_length = mark >> 24, mark & 0xFFFFFF
    body_length = max(0, total - 4 - header_length)
    if serialize_type != 0 or 8 + header_length > len(frame):
        return None, body_length
    try:
        header = json.loads(frame[8 : 8 + header_length])
    except ValueError:
        return None, body_length
    return (header if isinstance(header, dict) else None), body_length


class FrameSplitter:
    """Sans-IO splitter: ``feed(data)`` returns the complete frames (prefix included) now available.
    Feeding a stream whole or byte by byte gives the same frames. After a prefix that cannot be a remoting
    frame, ``broken`` is set and everything further is ignored (the relay still forwards it)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> list[bytes]:
        if self.broken:
            return []
        self._buf += data
        frames: list[bytes] = []
        while len(self._buf) >= 4:
            (total,) = struct.unpack_from(">i", self._buf)
            if total < 4 or total > FRAME_MAX:
                self.broken = True
                self._buf.clear()
                break
            if len(self._buf) < 4 + total:
                break
            frames.append(bytes(self._buf[: 4 + total]))
            del self._buf[: 4 + total]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at close = a truncated frame)."""
        return len(self._buf)


class CaptureRelay:
    """Listens on ``listen_host:listen_port`` (0 = a free port) and relays to ``target_host:target_port``."""

    def __init__(
        self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1", listen_port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self._listen = (listen_host, listen_port)
        self.frames: list[CapturedFrame] = []
        self._server: asyncio.Server | None = None
        self._conn_ids = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Condition()

    @property
    def address(self) -> str:
        """``host:port`` to give the client (ali-ons splits it on ':', so IPv4 only)."""
        assert self._server is not None, "relay not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    async def start(self) -> CaptureRelay:
        self._server = await asyncio.start_server(self._on_client, *self._listen)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> CaptureRelay:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_for_frame(
        self, predicate: Callable[[CapturedFrame], bool], timeout: float = 10.0
    ) -> CapturedFrame:
        """The first recorded frame (already seen or still to come) that satisfies ``predicate``."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for frame in self.frames:
                    if predicate(frame):
                        return frame
                await self._changed.wait()

    def to_json(self) -> dict[str, Any]:
        return {"target": f"{self.target[0]}:{self.target[1]}", "frames": [asdict(f) for f in self.frames]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    async def _on_client(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self._conn_ids += 1
        conn = self._conn_ids
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()  # the client sees a closed connection, as it would without the relay
            return
        self._writers.update((client_writer, server_writer))
        pumps = [
            asyncio.create_task(self._pump(conn, CLIENT_TO_SERVER, client_reader, server_writer)),
            asyncio.create_task(self._pump(conn, SERVER_TO_CLIENT, server_reader, client_writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            self._writers.difference_update((client_writer, server_writer))

    async def _pump(
        self, conn: int, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        splitter = FrameSplitter()
        seq = 0
        try:
            while data := await reader.read(65536):
                # Record before forwarding, so a frame is in `frames` by the time the peer can react to it.
                for raw in splitter.feed(data):
                    header, body_length = decode_header(raw)
                    async with self._changed:
                        self.frames.append(
                            CapturedFrame(conn, direction, seq, raw.hex(), header, body_length)
                        )
                        self._changed.notify_all()
                    seq += 1
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Half-close semantics are not needed by remoting: one side closing ends the connection.
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def load_capture(path: str | Path) -> list[CapturedFrame]:
    """The frames of a capture file written by :meth:`CaptureRelay.save` (or by ``main``)."""
    data = json.loads(Path(path).read_text())
    return [CapturedFrame(**frame) for frame in data["frames"]]


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _serve(target: str, listen: str, out: Path) -> None:
    relay = CaptureRelay(
        *_host_port(target), listen_host=_host_port(listen)[0], listen_port=_host_port(listen)[1]
    )
    await relay.start()
    print(f"capture relay on {relay.address} -> {target}, writing {out} on SIGINT/SIGTERM", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await relay.close()
    relay.save(out)
    print(f"{len(relay.frames)} frames written to {out}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Relay a remoting TCP port and record every frame to JSON.")
    parser.add_argument("--target", required=True, help="HOST:PORT of the real server")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (port 0 = free port)")
    parser.add_argument("--out", required=True, type=Path, help="JSON file written when the relay stops")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.target, args.listen, args.out))


if __name__ == "__main__":
    main()
