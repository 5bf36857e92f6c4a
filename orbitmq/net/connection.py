"""One remoting connection, server or client side, as an asyncio Protocol.

Inbound frames are decoded by the sans-IO :class:`FrameDecoder`. Responses complete the matching
:meth:`Connection.request` by opaque; requests each run in their own task, so a long-poll held for 15 s
never delays the heartbeat behind it on the same socket, and responses leave in whatever order they finish.

Flow control: at ``inflight_requests_max`` running requests (or while the peer is not reading our
responses fast enough) the connection stops taking frames out of its decoder and pauses the transport;
it resumes when a request finishes. The cost is that responses to our own requests also wait then.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from orbitmq.core.errors import ClientError, ProtocolError
from orbitmq.net.dispatch import DispatchTable, handle_request
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import FLAG_ONEWAY, FLAG_RESPONSE, RemotingCommand
from orbitmq.protocol.frame import FrameDecoder, encode_command
from orbitmq.protocol.record import normalize_ipv4

__all__ = ["CloseCallback", "Connection", "NetCounters", "new_connection_id"]

log = logging.getLogger("orbitmq.net")

CloseCallback = Callable[["Connection"], None]

_OPAQUE_MASK = 0x7FFFFFFF

#: Connection ids are unique in the process, not per server or client: the broker keys client channels by
#: id, and an in-process connection (the proxy's local backend) lives beside its server's sockets. Per-server
#: counters gave both an id 1, and the close of one dropped the other's producer registration.
_connection_ids = itertools.count(1)


def new_connection_id() -> int:
    return next(_connection_ids)


#: Request codes counted one by one; any other code a peer sends is counted as -1, so a peer cannot grow
#: the per-code table without bound.
_KNOWN_CODES = frozenset(int(c) for c in RequestCode)


#: Output held back for one loop iteration at most this large; beyond it, frames are written at once.
_COALESCE_BYTES_MAX = 64 * 1024


@dataclass(slots=True)
class NetCounters:
    """Plain counters a metrics exporter can read; shared by all connections of one server or client."""

    connections_opened: int = 0
    connections_closed: int = 0
    bad_frames: int = 0
    idle_closed: int = 0
    requests_received: int = 0
    handler_errors: int = 0
    responses_dropped: int = 0
    #: Requests received per request code (rebalance traffic, pulls vs sends, ...); -1: unknown codes.
    requests_by_code: dict[int, int] = field(default_factory=dict)


class Connection(asyncio.Protocol):
    """A remoting connection. Handlers receive it with every request; it is also the asyncio Protocol
    (``connection_made``/``data_received``/... are transport callbacks, not for callers)."""

    def __init__(
        self,
        conn_id: int,
        dispatch: DispatchTable,
        *,
        frame_bytes_max: int,
        inflight_requests_max: int,
        idle_timeout_s: float | None,
        counters: NetCounters,
        tasks: set[asyncio.Task[None]],
        detect_foreign_protocols: bool = False,
        on_open: Callable[[Connection], None] | None = None,
    ) -> None:
        self.id = conn_id
        self.remote_addr: tuple[str, int] = ("0.0.0.0", 0)
        self.local_addr: tuple[str, int] = ("0.0.0.0", 0)
        self.closed = False
        #: Free for the owner's use (client id, group, ...), e.g. what a heartbeat said about this channel.
        self.attributes: dict[str, object] = {}
        self._dispatch = dispatch
        self._frame_bytes_max = frame_bytes_max
        self._inflight_max = inflight_requests_max
        self._idle_timeout_s = idle_timeout_s
        self._counters = counters
        self._tasks = tasks
        self._decoder = FrameDecoder(frame_bytes_max, detect_foreign_protocols=detect_foreign_protocols)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes | memoryview] = []  # frames written during this loop iteration
        self._out_bytes = 0
        self._pending: dict[int, asyncio.Future[RemotingCommand]] = {}
        self._opaques = itertools.count(1)
        self._inflight = 0
        self._write_paused = False
        self._reading_paused = False
        self._draining = False  # shutting down: take no more requests
        self._last_activity = self._loop.time()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._close_callbacks: list[CloseCallback] = []
        self._on_open = on_open
        self._closed_future: asyncio.Future[None] = self._loop.create_future()

    def __repr__(self) -> str:
        host, port = self.remote_addr
        return f"<Connection #{self.id} {host}:{port}>"

    # -- public API ------------------------------------------------------------------------------------
    async def request(self, cmd: RemotingCommand, timeout_s: float) -> RemotingCommand:
        """Send ``cmd`` as a request and wait for the response with the same opaque.

        Raises :class:`ClientError` on timeout (the connection stays open) or when the connection closes.
        """
        if self.closed:
            raise ClientError(f"{self!r} is closed")
        opaque = self._next_opaque()
        cmd.opaque = opaque
        cmd.flag &= ~(FLAG_RESPONSE | FLAG_ONEWAY)
        fut: asyncio.Future[RemotingCommand] = self._loop.create_future()
        self._pending[opaque] = fut
        try:
            self._write_request(cmd)
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            raise ClientError(f"request code {cmd.code} to {self!r} timed out after {timeout_s:g}s") from None
        finally:
            self._pending.pop(opaque, None)

    def send_oneway(self, cmd: RemotingCommand) -> None:
        """Send ``cmd`` with the oneway flag; no response is expected. Raises ClientError if closed."""
        if self.closed:
            raise ClientError(f"{self!r} is closed")
        cmd.opaque = self._next_opaque()
        cmd.flag = (cmd.flag | FLAG_ONEWAY) & ~FLAG_RESPONSE
        self._write_request(cmd)

    def close(self) -> None:
        """Close gracefully (buffered writes are flushed); pending requests fail with ClientError."""
        self._flush_out()
        self._begin_close()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping unsent data (hostile or dead peers)."""
        self._begin_close()
        if self._transport is not None:
            self._transport.abort()

    def add_close_callback(self, cb: CloseCallback) -> None:
        """``cb(conn)`` runs once the connection is closed (at once if it already is)."""
        if self._closed_future.done():
            self._run_callback(cb)
        else:
            self._close_callbacks.append(cb)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed_future)

    @property
    def inflight_requests(self) -> int:
        """Requests from the peer being handled now."""
        return self._inflight

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    # -- asyncio.Protocol --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the Transport interface without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self.remote_addr = _addr(transport.get_extra_info("peername"))
        self.local_addr = _addr(transport.get_extra_info("sockname"))
        self._counters.connections_opened += 1
        self._touch()
        if self._idle_timeout_s is not None:
            self._idle_handle = self._loop.call_later(self._idle_timeout_s, self._check_idle)
        if self._on_open is not None:
            self._run_callback(self._on_open)

    def data_received(self, data: bytes) -> None:
        self._touch()
        if self.closed:
            return
        self._decoder.feed(data)  # never raises here: a dead decoder means we already closed
        self._drain_decoder()

    def eof_received(self) -> bool | None:
        return None  # half-closed peer: close our side too

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._drain_decoder()

    def connection_lost(self, exc: Exception | None) -> None:
        self._begin_close()
        if self._closed_future.done():
            return
        self._counters.connections_closed += 1
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        log.debug("%r closed%s", self, f": {exc}" if exc else "")
        self._closed_future.set_result(None)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for cb in callbacks:
            self._run_callback(cb)

    # -- internals -----------------------------------------------------------------------------------------
    def _begin_close(self) -> None:
        if self.closed:
            return
        self.closed = True
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ClientError(f"{self!r} closed before the response arrived"))

    def _run_callback(self, cb: CloseCallback) -> None:
        try:
            cb(self)
        except Exception:
            log.exception("%r: close callback %r failed", self, cb)

    def _next_opaque(self) -> int:
        while True:
            opaque = next(self._opaques) & _OPAQUE_MASK
            if opaque not in self._pending:
                return opaque

    def _touch(self) -> None:
        self._last_activity = self._loop.time()

    def _write_request(self, cmd: RemotingCommand) -> None:
        try:
            buffers = encode_command(cmd, frame_bytes_max=self._frame_bytes_max)
        except ProtocolError as exc:
            raise ClientError(f"cannot send request code {cmd.code}: {exc}") from exc
        self._write(buffers)

    def _write(self, buffers: list[bytes | memoryview]) -> None:
        # Frames written during one loop iteration leave in one send(): with many requests in flight on a
        # connection, a system call per response was the largest cost of the broker's send path.
        # Large output goes at once, so the transport's high-water mark (and our back-pressure) sees it.
        assert self._transport is not None
        if not self._out:
            self._loop.call_soon(self._flush_out)
        self._out.extend(buffers)
        self._out_bytes += sum(len(b) for b in buffers)
        if self._out_bytes >= _COALESCE_BYTES_MAX:
            self._flush_out()
        self._touch()

    def _flush_out(self) -> None:
        out, self._out, self._out_bytes = self._out, [], 0
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.writelines(out)

    def _drain_decoder(self) -> None:
        """Take frames out of the decoder while under the in-flight bound."""
        while not self.closed and not self._must_pause():
            try:
                cmd = self._decoder.next_command()
            except ProtocolError as exc:
                self._counters.bad_frames += 1
                host, port = self.remote_addr
                log.warning("closing remoting connection from %s:%d: %s", host, port, exc,
                            extra={"event": "bad_frame", "peer": f"{host}:{port}"})  # fmt: skip
                self.abort()
                return
            if cmd is None:
                break
            if cmd.is_response:
                self._complete(cmd)
            else:
                self._start_request(cmd)
        self._update_reading()

    def _must_pause(self) -> bool:
        return self._draining or self._write_paused or self._inflight >= self._inflight_max

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self.closed:
            return
        pause = self._must_pause()
        if pause and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not pause and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _stop_reading(self) -> None:
        """Server shutdown: finish what is running, start nothing new."""
        self._draining = True
        self._update_reading()

    def _complete(self, response: RemotingCommand) -> None:
        fut = self._pending.get(response.opaque)
        if fut is None or fut.done():
            log.debug("%r: response opaque %d matches no request (timed out?)", self, response.opaque)
            return
        fut.set_result(response)

    def _start_request(self, cmd: RemotingCommand) -> None:
        counters = self._counters
        counters.requests_received += 1
        by_code = counters.requests_by_code
        code = cmd.code if cmd.code in _KNOWN_CODES else -1
        by_code[code] = by_code.get(code, 0) + 1
        self._inflight += 1
        task = self._loop.create_task(self._serve(cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, cmd: RemotingCommand) -> None:
        try:
            response = await handle_request(self._dispatch, cmd, self)
            if response is None:
                return
            if response.code == ResponseCode.SYSTEM_ERROR:
                self._counters.handler_errors += 1
            response.opaque = cmd.opaque
            response.flag |= FLAG_RESPONSE
            if self.closed:
                self._counters.responses_dropped += 1
                log.debug("%r closed before the response to code %d opaque %d", self, cmd.code, cmd.opaque)
                return
            self._write(self._encode_response(cmd, response))
        except Exception:
            log.exception("%r: serving request code %d failed", self, cmd.code)
        finally:
            self._inflight -= 1
            self._drain_decoder()

    def _encode_response(self, cmd: RemotingCommand, response: RemotingCommand) -> list[bytes | memoryview]:
        try:
            return encode_command(response, frame_bytes_max=self._frame_bytes_max)
        except ProtocolError as exc:
            log.error("%r: response to code %d cannot be encoded: %s", self, cmd.code, exc)
            fallback = cmd.response(ResponseCode.SYSTEM_ERROR, f"response cannot be encoded: {exc}")
            return encode_command(fallback, frame_bytes_max=self._frame_bytes_max)

    def _check_idle(self) -> None:
        assert self._idle_timeout_s is not None
        if self.closed:
            return
        idle_for = self._loop.time() - self._last_activity
        if idle_for >= self._idle_timeout_s and self._inflight == 0:
            # A held long-poll is not idleness: only a connection with nothing running is closed.
            self._counters.idle_closed += 1
            host, port = self.remote_addr
            log.info("closing remoting connection from %s:%d: idle for %.1fs", host, port, idle_for)
            self.abort()
            return
        delay = self._idle_timeout_s - idle_for if idle_for < self._idle_timeout_s else self._idle_timeout_s
        self._idle_handle = self._loop.call_later(delay, self._check_idle)


def _addr(info: object) -> tuple[str, int]:
    if isinstance(info, tuple) and len(info) >= 2:
        return normalize_ipv4(str(info[0])), int(info[1])
    return ("0.0.0.0", 0)
