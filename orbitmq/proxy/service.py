"""``apache.rocketmq.v2.MessagingService`` on grpc.aio: protobuf in, protobuf out, logic in the Processor.

The servicer base class and the registration function come from the official client's generated modules
(``rocketmq.grpc_protocol``), so an application can run the official client and an embedded OrbitMQ in one
process without a protobuf descriptor clash. Unary RPCs answer errors in-band (gRPC OK, ``status`` set), as
the Java proxy does; only Telemetry uses gRPC-level errors.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from rocketmq.grpc_protocol import service_pb2 as spb
from rocketmq.grpc_protocol import service_pb2_grpc as sgrpc

from orbitmq.proxy.consumer import Receiver
from orbitmq.proxy.processor import CallContext, Processor
from orbitmq.proxy.status import Code, ProxyError, error_status, ok_status, status

__all__ = ["MessagingService"]

log = logging.getLogger("orbitmq.proxy")

_CLIENT_ID = "x-mq-client-id"
_VERSION = "x-mq-client-version"
_LANGUAGE = "x-mq-language"
#: Telemetry stream closed by the server side: a sentinel in the stream's outbox.
_CLOSE = object()


def call_context(context: Any) -> CallContext:
    headers = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    client_id = headers.get(_CLIENT_ID, "")
    if not client_id:
        raise ProxyError(Code.CLIENT_ID_REQUIRED, "the x-mq-client-id header is required")
    remaining = context.time_remaining()
    peer = peer_address(context.peer() or "")
    return CallContext(client_id, headers.get(_VERSION, ""), headers.get(_LANGUAGE, ""), remaining, peer)


def peer_address(peer: str) -> str:
    """gRPC's ``ipv4:10.0.0.1:5000`` / ``ipv6:[::1]:5000`` → ``10.0.0.1:5000`` / ``[::1]:5000``."""
    scheme, sep, rest = peer.partition(":")
    return rest if sep and scheme in ("ipv4", "ipv6") else peer


Handler = Callable[[Any, Any, Any, CallContext], Awaitable[Any]]


def unary(response_type: Any) -> Callable[[Handler], Callable[[Any, Any, Any], Awaitable[Any]]]:
    """Run a unary handler; any error becomes the response's ``status`` (gRPC itself answers OK)."""

    def wrap(fn: Handler) -> Callable[[Any, Any, Any], Awaitable[Any]]:
        @functools.wraps(fn)
        async def handler(self: MessagingService, request: Any, context: Any) -> Any:
            self.proc.counters.grpc_requests += 1
            try:
                ctx = call_context(context)
                self.proc.session(ctx)
                return await fn(self, request, context, ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.proc.counters.grpc_errors += 1
                if not isinstance(exc, ProxyError):
                    log.info("%s failed: %s", fn.__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                return response_type(status=error_status(exc))

        return handler

    return wrap


class MessagingService(sgrpc.MessagingServiceServicer):  # type: ignore[misc]
    def __init__(self, proc: Processor, receiver: Receiver) -> None:
        self.proc = proc
        self.receiver = receiver

    def close_streams(self) -> None:
        """End every open Telemetry stream (server shutdown): clients see a clean end of stream."""
        for session in self.proc.clients:
            for box in session.outboxes:
                box.put_nowait(_CLOSE)

    # -- routes and clients ----------------------------------------------------------------------------
    @unary(spb.QueryRouteResponse)
    async def QueryRoute(self, request: Any, context: Any, ctx: CallContext) -> Any:
        queues = await self.proc.query_route(request, ctx)
        return spb.QueryRouteResponse(status=ok_status(), message_queues=queues)

    @unary(spb.QueryAssignmentResponse)
    async def QueryAssignment(self, request: Any, context: Any, ctx: CallContext) -> Any:
        found = await self.proc.query_assignment(request, ctx)
        return spb.QueryAssignmentResponse(status=ok_status(), assignments=found)

    @unary(spb.HeartbeatResponse)
    async def Heartbeat(self, request: Any, context: Any, ctx: CallContext) -> Any:
        session = self.proc.session(ctx)
        if request.group.name:
            session.group = request.group.name
        return spb.HeartbeatResponse(status=ok_status())

    @unary(spb.NotifyClientTerminationResponse)
    async def NotifyClientTermination(self, request: Any, context: Any, ctx: CallContext) -> Any:
        session = self.proc.terminate(ctx)
        if session is not None:
            await self.receiver.client_gone(session)
        return spb.NotifyClientTerminationResponse(status=ok_status())

    # -- producing -------------------------------------------------------------------------------------
    @unary(spb.SendMessageResponse)
    async def SendMessage(self, request: Any, context: Any, ctx: CallContext) -> Any:
        return await self.proc.send(request, ctx)

    @unary(spb.EndTransactionResponse)
    async def EndTransaction(self, request: Any, context: Any, ctx: CallContext) -> Any:
        await self.proc.end_transaction(request, ctx)
        return spb.EndTransactionResponse(status=ok_status())

    @unary(spb.RecallMessageResponse)
    async def RecallMessage(self, request: Any, context: Any, ctx: CallContext) -> Any:
        raise ProxyError(Code.NOT_IMPLEMENTED, "recalling messages is not supported")

    # -- consuming -------------------------------------------------------------------------------------
    async def ReceiveMessage(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.proc.counters.grpc_requests += 1
        try:
            ctx = call_context(context)
            session = self.proc.session(ctx)
        except ProxyError as exc:
            self.proc.counters.grpc_errors += 1
            yield spb.ReceiveMessageResponse(status=error_status(exc))
            return
        async for response in self.receiver.receive(request, ctx, session):
            yield response

    @unary(spb.AckMessageResponse)
    async def AckMessage(self, request: Any, context: Any, ctx: CallContext) -> Any:
        return await self.receiver.ack(request, ctx, self.proc.session(ctx))

    @unary(spb.ChangeInvisibleDurationResponse)
    async def ChangeInvisibleDuration(self, request: Any, context: Any, ctx: CallContext) -> Any:
        handle = await self.receiver.change_invisible(request, ctx, self.proc.session(ctx))
        return spb.ChangeInvisibleDurationResponse(status=ok_status(), receipt_handle=handle)

    @unary(spb.ForwardMessageToDeadLetterQueueResponse)
    async def ForwardMessageToDeadLetterQueue(self, request: Any, context: Any, ctx: CallContext) -> Any:
        await self.receiver.forward_to_dlq(request, ctx, self.proc.session(ctx))
        return spb.ForwardMessageToDeadLetterQueueResponse(status=ok_status())

    async def PullMessage(self, request: Any, context: Any) -> AsyncIterator[Any]:
        # Not implemented by the Java proxy either; no official client calls it.
        yield spb.PullMessageResponse(status=status(Code.NOT_IMPLEMENTED, "PullMessage is not supported"))

    @unary(spb.UpdateOffsetResponse)
    async def UpdateOffset(self, request: Any, context: Any, ctx: CallContext) -> Any:
        raise ProxyError(Code.NOT_IMPLEMENTED, "UpdateOffset is not supported")

    @unary(spb.GetOffsetResponse)
    async def GetOffset(self, request: Any, context: Any, ctx: CallContext) -> Any:
        raise ProxyError(Code.NOT_IMPLEMENTED, "GetOffset is not supported")

    @unary(spb.QueryOffsetResponse)
    async def QueryOffset(self, request: Any, context: Any, ctx: CallContext) -> Any:
        raise ProxyError(Code.NOT_IMPLEMENTED, "QueryOffset is not supported")

    @unary(spb.SyncLiteSubscriptionResponse)
    async def SyncLiteSubscription(self, request: Any, context: Any, ctx: CallContext) -> Any:
        raise ProxyError(Code.NOT_IMPLEMENTED, "lite topics are not supported")

    # -- telemetry -------------------------------------------------------------------------------------
    async def Telemetry(self, request_iterator: Any, context: Any) -> None:
        """Answer each settings command on the same stream and keep it open until the client ends it;
        commands the proxy pushes (transaction checks) go out through the session's outbox."""
        self.proc.counters.grpc_requests += 1
        try:
            ctx = call_context(context)
        except ProxyError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
            return
        session = self.proc.session(ctx)
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        session.outboxes.append(outbox)
        self.proc.counters.telemetry_streams += 1
        reader = asyncio.get_running_loop().create_task(self._read_telemetry(request_iterator, ctx, outbox))
        try:
            while True:
                item = await outbox.get()
                if item is _CLOSE:
                    break
                if isinstance(item, ProxyError):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, item.message)
                    return
                await context.write(item)
        finally:
            self.proc.counters.telemetry_streams -= 1
            if outbox in session.outboxes:
                session.outboxes.remove(outbox)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read_telemetry(self, requests: Any, ctx: CallContext, outbox: asyncio.Queue[Any]) -> None:
        try:
            async for command in requests:
                session = self.proc.session(ctx)
                which = command.WhichOneof("command")
                if which == "settings":
                    try:
                        reply = await self.proc.on_settings(session, command.settings)
                    except ProxyError as exc:
                        outbox.put_nowait(exc)
                        return
                    outbox.put_nowait(spb.TelemetryCommand(status=ok_status(), settings=reply))
                else:
                    log.debug("telemetry %s from %s ignored", which, ctx.client_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away mid-stream
            log.debug("telemetry stream of %s ended: %s", ctx.client_id, exc)
        outbox.put_nowait(_CLOSE)
