"""The proxy's request logic between the gRPC service (thin: protobuf in, protobuf out) and a backend.

Like the Java proxy's ``MessagingProcessor`` it knows nothing about gRPC transport details; it turns each
client request into remoting requests through :class:`~orbitmq.proxy.backends.base.Backend`, so local and
cluster mode share every line of it.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import Any

from rocketmq.grpc_protocol import definition_pb2 as pb
from rocketmq.grpc_protocol import service_pb2 as spb

from orbitmq.client.routing import TopicRoute
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ProtocolError
from orbitmq.net import Connection
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import Prop, decode_records
from orbitmq.proxy.backends.base import Backend
from orbitmq.proxy.clients import ClientRegistry, ClientSession
from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.convert import outgoing_message, record_to_message, subscription_filter
from orbitmq.proxy.counters import ProxyCounters
from orbitmq.proxy.metadata import Metadata
from orbitmq.proxy.producer import Sender, TransactionData
from orbitmq.proxy.registration import ConsumerRegistration, ProducerRegistration, remoting_language
from orbitmq.proxy.routes import assignments, message_queues, proxy_endpoints
from orbitmq.proxy.settings import CONSUMER_TYPES, merge_settings
from orbitmq.proxy.status import Code, ProxyError, error_status, status

__all__ = ["CallContext", "Processor"]

log = logging.getLogger("orbitmq.proxy")

#: What the clients themselves accept as a topic or group name.
_NAME = re.compile(r"[%a-zA-Z0-9_-]+")


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the proxy needs to know about one call: who makes it and how long it may take."""

    client_id: str
    version: str = ""
    language: str = ""
    #: Seconds left before the client's deadline (None: no deadline).
    time_remaining: float | None = None
    #: The client's address (``host:port``) as the gRPC server sees it.
    peer: str = ""

    def timeout(self, default_s: float = 3.0) -> float:
        """A timeout for a broker request made for this call."""
        if self.time_remaining is None:
            return default_s
        return max(0.05, self.time_remaining - 0.05)


class Processor:
    def __init__(
        self,
        config: ProxyConfig,
        backend: Backend,
        clock: Clock,
        counters: ProxyCounters,
        *,
        listen: tuple[str, int],
    ) -> None:
        self.config, self.backend, self.clock, self.counters = config, backend, clock, counters
        #: (host, port) the gRPC server listens on: the endpoints handed out when a request names none.
        self.listen = listen
        self.metadata = Metadata(backend, config, clock)
        self.sender = Sender(backend, self.metadata, clock)
        self.clients = ClientRegistry()
        self.registration = ProducerRegistration(backend, self.metadata, clock)
        self.members = ConsumerRegistration(backend, self.metadata, clock, counters)
        self._random = random.Random()
        backend.dispatch.register(
            RequestCode.CHECK_TRANSACTION_STATE, self.check_transaction_state, replace=True
        )
        # Brokers tell the members of a group about membership and request-mode changes; the proxy's
        # consumers pop from every queue, so there is nothing to rebalance.
        for code in (
            RequestCode.NOTIFY_CONSUMER_IDS_CHANGED,
            RequestCode.NOTIFY_MESSAGE_REQUEST_MODE_CHANGED,
        ):
            backend.dispatch.register(code, _nothing_to_rebalance, replace=True)

    # -- routes ----------------------------------------------------------------------------------------
    def endpoints(self, requested: Any) -> Any:
        return proxy_endpoints(requested, *self.listen, self.config.use_endpoint_port_from_request)

    async def query_route(self, request: Any, ctx: CallContext) -> list[Any]:
        topic = _name(request.topic, "topic")
        route = await self.metadata.route(topic)
        types = {name: (await self.metadata.topic_types(topic, name))[0] for name in route.broker_addrs}
        queues = message_queues(route, request.topic, self.endpoints(request.endpoints), types.__getitem__)
        if not queues:
            raise ProxyError(Code.FORBIDDEN, f"topic {topic} has no readable or writable queue")
        return queues

    async def query_assignment(self, request: Any, ctx: CallContext) -> list[Any]:
        topic, group = _name(request.topic, "topic"), _name(request.group, "consumer group")
        route = await self.metadata.route(topic)
        if not route.subscribe_queues:
            raise ProxyError(Code.FORBIDDEN, f"topic {topic} has no readable queue")
        settings = await self.metadata.group_settings(group, _first_broker(route))
        return assignments(route, request.topic, self.endpoints(request.endpoints), settings.fifo)

    # -- clients ---------------------------------------------------------------------------------------
    def session(self, ctx: CallContext) -> ClientSession:
        s = self.clients.session(ctx.client_id, self.clock.monotonic())
        s.version, s.language = ctx.version or s.version, ctx.language or s.language
        s.address = ctx.peer or s.address
        return s

    async def on_settings(self, session: ClientSession, settings: Any) -> Any:
        """The Telemetry reply to a client's settings; registers what the client publishes/consumes."""
        group = None
        ctype = int(settings.client_type)
        if settings.WhichOneof("pub_sub") == "subscription" or ctype in CONSUMER_TYPES:
            name = settings.subscription.group.name
            topics = [e.topic.name for e in settings.subscription.subscriptions]
            broker = None
            if topics:
                try:
                    broker = _first_broker(await self.metadata.route(topics[0]))
                except Exception as exc:  # the group's settings still have defaults to offer
                    log.debug("route of %s for settings unavailable: %s", topics[0], exc)
            group = await self.metadata.group_settings(name, broker) if name else None
            session.group = name or session.group
            if name:
                self._register_consumer(session, name, settings)
        reply = merge_settings(settings, self.config, group)
        session.client_type, session.settings = ctype, reply
        if settings.WhichOneof("pub_sub") == "publishing":
            published = tuple(str(t.name) for t in settings.publishing.topics)
            self.registration.add_topics([t for t in published if t not in session.publish_topics])
            session.publish_topics = tuple(dict.fromkeys(session.publish_topics + published))
        return reply

    def _register_consumer(self, session: ClientSession, group: str, settings: Any) -> None:
        """Make the client a member of its group on the brokers (what ``admin group describe`` lists)."""
        subs = {}
        for entry in settings.subscription.subscriptions:
            try:
                if entry.topic.name:
                    subs[str(entry.topic.name)] = subscription_filter(entry.expression)
            except ProxyError as exc:  # its receives will answer the error; the rest still registers
                log.info(
                    "client %s: subscription to %s not registered: %s",
                    session.client_id,
                    entry.topic.name,
                    exc,
                )
        try:
            language = pb.Language.Name(settings.user_agent.language)
        except ValueError:  # a language newer than our protobuf modules
            language = ""
        self.members.update(
            session.client_id, group, subs, client_addr=session.address, language=remoting_language(language)
        )

    def terminate(self, ctx: CallContext) -> ClientSession | None:
        session = self.clients.remove(ctx.client_id)
        if session is not None:
            self._forget(session)
        return session

    def expire_idle_clients(self) -> list[ClientSession]:
        gone = self.clients.idle(self.clock.monotonic(), self.config.grpc_client_idle_time_mills / 1000)
        for s in gone:
            self.clients.remove(s.client_id)
            self._forget(s)
        return gone

    def _forget(self, session: ClientSession) -> None:
        self.registration.remove_topics(list(session.publish_topics))
        self.members.remove(session.client_id)

    # -- sending ---------------------------------------------------------------------------------------
    async def send(self, request: Any, ctx: CallContext) -> Any:
        if not len(request.messages):
            raise ProxyError(Code.BAD_REQUEST, "no message to send")
        topic = request.messages[0].topic
        entries: list[Any] = []
        for msg in request.messages:
            if msg.topic != topic:
                raise ProxyError(Code.MESSAGE_CORRUPTED, "messages of one request must share a topic")
            out = outgoing_message(msg, self.config, self.clock.now_ms())
            try:
                result = await self.sender.send(
                    out, ctx.timeout(), validate_type=self.config.enable_topic_message_type_check
                )
            except Exception as exc:
                if len(request.messages) == 1:
                    raise
                entries.append(spb.SendResultEntry(status=error_status(exc), message_id=out.message_id))
                continue
            self.counters.messages_sent += 1
            entries.append(
                spb.SendResultEntry(
                    status=status(result.code, pb.Code.Name(result.code)), message_id=result.message_id,
                    transaction_id=result.transaction_id, offset=result.offset,
                )
            )  # fmt: skip
        codes = {e.status.code for e in entries}
        top = status(codes.pop()) if len(codes) == 1 else status(Code.MULTIPLE_RESULTS)
        return spb.SendMessageResponse(status=top, entries=entries)

    async def end_transaction(self, request: Any, ctx: CallContext) -> None:
        topic = _name(request.topic, "topic")
        if request.resolution not in (pb.TransactionResolution.COMMIT, pb.TransactionResolution.ROLLBACK):
            raise ProxyError(Code.BAD_REQUEST, "transaction resolution must be COMMIT or ROLLBACK")
        if not request.transaction_id:
            raise ProxyError(Code.INVALID_TRANSACTION_ID, "transaction id is empty")
        await self.sender.end_transaction(
            topic, request.message_id, request.transaction_id,
            request.resolution == pb.TransactionResolution.COMMIT,
            request.source == pb.TransactionSource.SOURCE_SERVER_CHECK, ctx.timeout(),
        )  # fmt: skip

    async def check_transaction_state(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        """A broker asks the producer group (= topic) about a half message: give it to one of the topic's
        producers as RecoverOrphanedTransactionCommand; its EndTransaction then resolves it."""
        try:
            records = decode_records(cmd.body_bytes())
        except ProtocolError as exc:
            log.warning("CHECK_TRANSACTION_STATE with an undecodable body: %s", exc)
            return None
        if not records:
            return None
        rec = records[0]
        topic = rec.properties.get(Prop.REAL_TOPIC) or cmd.ext_fields.get("topic") or rec.topic
        tx_id = cmd.ext_fields.get("transactionId") or rec.properties.get(Prop.TRANSACTION_ID) or rec.msg_id
        producers = list(self.clients.producers_of(topic))
        if not producers:
            log.info(
                "transaction check for %s of topic %s: no producer of that topic is connected", tx_id, topic
            )
            return None
        addr = f"{rec.store_host[0]}:{rec.store_host[1]}"
        broker = (
            cmd.ext_fields.get("brokerName")
            or self.backend.broker_name_of(addr)
            or (self.backend.broker_names() or [""])[0]
        )
        self.sender.transactions.put(
            TransactionData(
                topic, broker, rec.msg_id, tx_id, int(cmd.ext_fields.get("commitLogOffset", rec.physical_offset)),
                int(cmd.ext_fields.get("tranStateTableOffset", rec.queue_offset)),
            )
        )  # fmt: skip
        message = record_to_message(rec, topic)
        command = spb.TelemetryCommand(
            recover_orphaned_transaction_command=spb.RecoverOrphanedTransactionCommand(
                message=message, transaction_id=tx_id
            )
        )
        if self._random.choice(producers).push(command):
            self.counters.transaction_checks += 1
        return None


async def _nothing_to_rebalance(cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
    return None if cmd.is_oneway else cmd.response()


def _name(resource: Any, what: str) -> str:
    name = resource.name
    if not name:
        raise ProxyError(
            Code.ILLEGAL_TOPIC if what == "topic" else Code.ILLEGAL_CONSUMER_GROUP, f"{what} is empty"
        )
    if len(name) > 255 or not _NAME.fullmatch(name):
        code = Code.ILLEGAL_TOPIC if what == "topic" else Code.ILLEGAL_CONSUMER_GROUP
        raise ProxyError(code, f"{what} {name[:80]!r} has characters outside [%a-zA-Z0-9_-]")
    return str(name)


def _first_broker(route: TopicRoute) -> str | None:
    names = sorted({q.broker_name for q in route.subscribe_queues} or set(route.broker_addrs))
    return names[0] if names else None
