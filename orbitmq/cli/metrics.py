"""Prometheus metrics of every OrbitMQ component in the process: the only module that imports
``prometheus_client``.

Components keep plain counters, gauges and :class:`orbitmq.core.metrics.Histogram` samples as attributes;
:class:`OrbitCollector` reads them at scrape time and turns them into metric families. Names follow
RocketMQ 5's OpenTelemetry metrics where an equivalent exists (``rocketmq_messages_in_total``, ...; labels
``cluster``, ``node_type``, ``node_id`` = broker name, ``topic``, ``consumer_group``), and ``orbitmq_*``
for what upstream lacks. ``docs/operations.md`` lists every metric, its meaning and the alerts to set.

:class:`MetricsHttpServer` serves ``GET /metrics`` from the event loop itself, not from the thread
``prometheus_client.start_http_server`` would start: the collector reads dicts the loop mutates, which a
second thread must not iterate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.heartbeat import ConsumeType
from orbitmq.broker.offsets import TOPIC_GROUP_SEPARATOR
from orbitmq.broker.pop import PopService
from orbitmq.broker.topics import RETRY_GROUP_TOPIC_PREFIX, is_system_topic
from orbitmq.core.errors import ConfigError
from orbitmq.core.metrics import Histogram
from orbitmq.core.service import Service
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.net.connection import NetCounters
from orbitmq.protocol.codes import RequestCode
from orbitmq.proxy import ProxyApp

__all__ = ["MetricsHttpServer", "OrbitCollector", "metrics_registry"]

log = logging.getLogger("orbitmq.metrics")

#: Requests that consumers send to (re)balance, by the ``kind`` label they are counted under.
REBALANCE_REQUESTS: dict[int, str] = {
    RequestCode.GET_CONSUMER_LIST_BY_GROUP: "get_consumer_list",
    RequestCode.LOCK_BATCH_MQ: "lock_batch_mq",
    RequestCode.UNLOCK_BATCH_MQ: "unlock_batch_mq",
    RequestCode.QUERY_ASSIGNMENT: "query_assignment",
    RequestCode.SET_MESSAGE_REQUEST_MODE: "set_message_request_mode",
}
_CONSUME_MODE = {
    ConsumeType.CONSUME_ACTIVELY: "pull",
    ConsumeType.CONSUME_PASSIVELY: "push",
    ConsumeType.CONSUME_POP: "pop",
}
_BROKER = ("cluster", "node_type", "node_id")
_NODE = ("node_type", "node_id")
_SYSTEM_GROUP_PREFIX = "cid_rmq_sys_"

Getter = Callable[[], Any]


class _Families:
    """The metric families of one scrape by name, so that several components add to one family."""

    def __init__(self) -> None:
        self._by_name: dict[str, Metric] = {}

    def _get(self, kind: Callable[..., Metric], name: str, doc: str, labels: tuple[str, ...]) -> Any:
        fam = self._by_name.get(name)
        if fam is None:
            fam = self._by_name[name] = kind(name, doc, labels=list(labels))
        return fam

    def counter(self, name: str, doc: str, labels: tuple[str, ...], values: list[str], value: float) -> None:
        self._get(CounterMetricFamily, name, doc, labels).add_metric(values, value)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...], values: list[str], value: float) -> None:
        self._get(GaugeMetricFamily, name, doc, labels).add_metric(values, value)

    def histogram(
        self, name: str, doc: str, labels: tuple[str, ...], values: list[str], recorder: object
    ) -> None:
        if not isinstance(recorder, Histogram):  # a NULL_RECORDER keeps nothing to export
            return
        snap = recorder.snapshot()
        buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in snap.cumulative()]
        self._get(HistogramMetricFamily, name, doc, labels).add_metric(values, buckets, snap.sum)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())


def _getter(app: Any) -> Getter:
    return app if callable(app) else (lambda: app)


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _is_system(topic: str, group: str = "") -> str:
    return _bool(is_system_topic(topic) or group.lower().startswith(_SYSTEM_GROUP_PREFIX))


class OrbitCollector(Collector):
    """Every component of the process, read when Prometheus scrapes. Add components (or functions that
    return them, for components built later) with :meth:`add_broker` / :meth:`add_namesrv`."""

    def __init__(self) -> None:
        self._brokers: list[Getter] = []
        self._namesrvs: list[Getter] = []
        self._proxies: list[Getter] = []

    def add_broker(self, app: BrokerApp | Callable[[], BrokerApp | None]) -> None:
        self._brokers.append(_getter(app))

    def add_namesrv(self, app: NamesrvApp | Callable[[], NamesrvApp | None]) -> None:
        self._namesrvs.append(_getter(app))

    def add_proxy(self, app: ProxyApp | Callable[[], ProxyApp | None]) -> None:
        self._proxies.append(_getter(app))

    def collect(self) -> Iterator[Metric]:
        fams = _Families()
        for get in self._namesrvs:
            app = get()
            if app is not None and app.running:
                _namesrv(fams, app)
        for get in self._brokers:
            app = get()
            if app is not None and app.running and app.context is not None:
                _broker(fams, app)
        for get in self._proxies:
            app = get()
            if app is not None and app.running:
                _proxy(fams, app)
        return iter(fams)


def metrics_registry(collector: OrbitCollector) -> CollectorRegistry:
    """A registry of its own (no process-wide default registry): the collector plus process metrics."""
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


# -- remoting (every server) ---------------------------------------------------------------------------
def _remoting(fams: _Families, node: list[str], c: NetCounters) -> None:
    fams.gauge("orbitmq_remoting_connections", "Open remoting connections", _NODE, node,
               c.connections_opened - c.connections_closed)  # fmt: skip
    for name, doc, value in (
        ("connections_opened", "Remoting connections accepted", c.connections_opened),
        ("bad_frames", "Connections closed for a malformed frame or a foreign protocol", c.bad_frames),
        ("idle_closed", "Connections closed for idleness", c.idle_closed),
        ("handler_errors", "Requests answered SYSTEM_ERROR", c.handler_errors),
        ("responses_dropped", "Responses dropped because the connection had closed", c.responses_dropped),
    ):
        fams.counter(f"orbitmq_remoting_{name}_total", doc, _NODE, node, value)
    for code, count in sorted(c.requests_by_code.items()):
        name = RequestCode(code).name.lower() if code in RequestCode._value2member_map_ else "unknown"
        fams.counter("orbitmq_remoting_requests_total", "Remoting requests received, by request code",
                     (*_NODE, "request_code"), [*node, name], count)  # fmt: skip


# -- NameServer ----------------------------------------------------------------------------------------
def _namesrv(fams: _Families, app: NamesrvApp) -> None:
    node = ["namesrv", app.addr]
    counters = app.server.counters
    _remoting(fams, node, counters)
    fams.gauge("orbitmq_namesrv_brokers", "Broker addresses registered and alive", _NODE, node,
               len(app.routes.live))  # fmt: skip
    fams.gauge("orbitmq_namesrv_topics", "Topics with a route", _NODE, node, len(app.routes.topics))
    registrations = counters.requests_by_code.get(RequestCode.REGISTER_BROKER, 0)
    fams.counter("orbitmq_namesrv_broker_registrations_total", "REGISTER_BROKER requests (every 30 s per "
                 "broker)", _NODE, node, registrations)  # fmt: skip
    fams.counter("orbitmq_namesrv_brokers_expired_total", "Brokers removed for not registering in time",
                 _NODE, node, app.brokers_expired)  # fmt: skip
    fams.counter("orbitmq_namesrv_brokers_disconnected_total", "Brokers removed because their connection "
                 "closed", _NODE, node, app.brokers_disconnected)  # fmt: skip


# -- Broker --------------------------------------------------------------------------------------------
def _broker(fams: _Families, app: BrokerApp) -> None:
    cfg = app.config
    node = [cfg.broker_cluster_name, "broker", cfg.broker_name]
    _remoting(fams, node[1:], app.server.counters)
    fams.gauge("rocketmq_broker_permission", "Broker permission (2 write, 4 read, 6 both)", _BROKER, node,
               cfg.broker_permission)  # fmt: skip
    _traffic(fams, node, app)
    _connections(fams, node, app)
    _lag(fams, node, app)
    _store(fams, node, app)
    _long_polling(fams, node, app)
    if app.pop is not None:
        _pop(fams, node, app.pop)
    by_code = app.server.counters.requests_by_code
    for code, kind in REBALANCE_REQUESTS.items():
        fams.counter("orbitmq_rebalance_requests_total", "Requests consumers send to rebalance, by kind",
                     (*_BROKER, "kind"), [*node, kind], by_code.get(code, 0))  # fmt: skip
    fams.counter("orbitmq_rebalance_notifications_total", "NOTIFY_CONSUMER_IDS_CHANGED rounds: a group's "
                 "members or subscriptions changed", _BROKER, node, app.consumers.notifications)  # fmt: skip


def _traffic(fams: _Families, node: list[str], app: BrokerApp) -> None:
    stats = app.stats
    labels_in = (*_BROKER, "topic", "message_type", "is_system")
    for (topic, kind), n in stats.messages_in.items():
        values = [*node, topic, kind, _is_system(topic)]
        fams.counter(
            "rocketmq_messages_in_total", "Messages stored by producers' sends", labels_in, values, n
        )
        fams.counter("rocketmq_throughput_in_total", "Body bytes stored by producers' sends", labels_in,
                     values, stats.bytes_in.get((topic, kind), 0))  # fmt: skip
    labels_out = (*_BROKER, "topic", "consumer_group", "is_retry", "is_system")
    for (topic, group), n in stats.messages_out.items():
        values = [*node, topic, group, _bool(topic.startswith(RETRY_GROUP_TOPIC_PREFIX)),
                  _is_system(topic, group)]  # fmt: skip
        fams.counter("rocketmq_messages_out_total", "Messages delivered to consumers", labels_out, values, n)
        fams.counter("rocketmq_throughput_out_total", "Record bytes delivered to consumers", labels_out,
                     values, stats.bytes_out.get((topic, group), 0))  # fmt: skip
    for group, n in stats.sent_to_dlq.items():
        fams.counter("rocketmq_send_to_dlq_messages_total", "Messages moved to %DLQ%<group>",
                     (*_BROKER, "consumer_group"), [*node, group], n)  # fmt: skip


def _connections(fams: _Families, node: list[str], app: BrokerApp) -> None:
    producers: dict[tuple[str, str], int] = {}
    for infos in app.producers.producer_table().values():
        for info in infos:
            key = (info.language, str(info.version))
            producers[key] = producers.get(key, 0) + 1
    for (language, version), n in producers.items():
        fams.gauge("rocketmq_producer_connections", "Producer connections", (*_BROKER, "language", "version"),
                   [*node, language, version], n)  # fmt: skip
    labels = (*_BROKER, "consumer_group", "language", "version", "consume_mode")
    for group in app.consumers.groups():
        snap = app.consumers.group_info(group)
        if snap is None:
            continue
        counts: dict[tuple[str, str], int] = {}
        for m in snap.members:
            counts[(m.language, str(m.version))] = counts.get((m.language, str(m.version)), 0) + 1
        mode = _CONSUME_MODE.get(snap.consume_type, "push")
        for (language, version), n in counts.items():
            fams.gauge("rocketmq_consumer_connections", "Consumer connections", labels,
                       [*node, group, language, version, mode], n)  # fmt: skip


def _lag(fams: _Families, node: list[str], app: BrokerApp) -> None:
    """Per (topic, group) with committed offsets: RocketMQ's lag, in-flight and ready messages."""
    store, offsets = app.store, app.offsets
    now = app.clock.now_ms()
    labels = (*_BROKER, "topic", "consumer_group", "is_retry", "is_system")
    for key, queues in offsets.table().items():
        topic, sep, group = key.partition(TOPIC_GROUP_SEPARATOR)
        if not sep or TOPIC_GROUP_SEPARATOR in group:
            continue  # not a topic@group key (upstream skips these too)
        lag = inflight = ready = latency = 0
        for qid, committed in queues.items():
            max_offset = store.max_offset_in_queue(topic, qid)
            pulled = max(committed, offsets.query_pull_offset(group, topic, qid) or 0)
            if app.pop is not None:  # popped, not yet committed (the commit waits for checkpoints)
                pulled = max(pulled, app.pop.pop_offsets.pop_offset((topic, group, qid), committed))
            lag += max(0, max_offset - committed)
            inflight += max(0, pulled - committed)
            ready += max(0, max_offset - pulled)
            if max_offset > committed:
                stored = store.message_store_timestamp(topic, qid, committed)
                if stored > 0:
                    latency = max(latency, now - stored)
        values = [*node, topic, group, _bool(topic.startswith(RETRY_GROUP_TOPIC_PREFIX)),
                  _is_system(topic, group)]  # fmt: skip
        for name, doc, value in (
            ("lag_messages", "Messages stored but not yet committed by the group", lag),
            ("inflight_messages", "Messages delivered to the group but not yet committed", inflight),
            ("ready_messages", "Messages stored and not yet delivered to the group", ready),
            ("lag_latency", "Milliseconds since the oldest message the group has not committed was stored",
             latency),
        ):  # fmt: skip
            fams.gauge(f"rocketmq_consumer_{name}", doc, labels, values, value)


def _store(fams: _Families, node: list[str], app: BrokerApp) -> None:
    store = app.store
    fams.gauge("orbitmq_store_writable", "1 while the store accepts writes (0: disk full, flush failed, "
               "stopped)", _BROKER, node, 1 if store.writable else 0)  # fmt: skip
    fams.gauge("orbitmq_store_commitlog_bytes", "CommitLog bytes retained (max - min physical offset)",
               _BROKER, node, store.max_physical_offset - store.min_physical_offset)  # fmt: skip
    fams.gauge("rocketmq_storage_dispatch_behind_bytes", "CommitLog bytes not yet in consume queues",
               _BROKER, node, store.max_physical_offset - store.dispatched_offset)  # fmt: skip
    commitlog = getattr(store, "commitlog", None)
    if commitlog is not None:
        fams.gauge("rocketmq_storage_flush_behind_bytes", "CommitLog bytes written but not yet fsynced",
                   _BROKER, node, commitlog.write_pos - commitlog.flushed_pos)  # fmt: skip
    stats = getattr(store, "stats", None)
    if stats is not None:
        for name, doc, value in (
            ("put_failures", "Puts the store refused (not running, disk full, flush failed)", stats.put_failed),
            ("flushes", "CommitLog fsyncs", stats.flushes),
            ("flush_failures", "CommitLog fsyncs that failed (the store then refuses writes)",
             stats.flush_failures),
            ("recovered_records", "Records re-dispatched by the last abnormal recovery",
             stats.recovered_records),
        ):  # fmt: skip
            fams.counter(f"orbitmq_store_{name}_total", doc, _BROKER, node, value)
    for attr, name, doc in (
        ("append_latency", "append_latency_seconds", "SYNC_FLUSH put latency, until durable"),
        ("flush_latency", "flush_latency_seconds", "CommitLog fsync latency"),
    ):
        fams.histogram(f"orbitmq_store_{name}", doc, _BROKER, node, getattr(store, attr, None))
    group_commit = getattr(store, "group_commit", None)
    if group_commit is not None:
        fams.histogram("orbitmq_store_group_commit_batch_size", "Appends made durable by one fsync "
                       "(SYNC_FLUSH group commit)", _BROKER, node, group_commit.batch_sizes)  # fmt: skip


def _long_polling(fams: _Families, node: list[str], app: BrokerApp) -> None:
    lp = app.long_polling
    fams.gauge("orbitmq_longpoll_held", "Pull requests held now", _BROKER, node, lp.held_count)
    fams.counter("orbitmq_longpoll_holds_total", "Pull requests held (long polling)", _BROKER, node, lp.holds)
    fams.counter("orbitmq_longpoll_refused_total", "Pulls answered at once because the hold table was full",
                 _BROKER, node, lp.refused)  # fmt: skip
    for reason, n in sorted(lp.releases.items()):
        fams.counter("orbitmq_longpoll_releases_total", "Held pulls released, by reason",
                     (*_BROKER, "reason"), [*node, reason], n)  # fmt: skip
    fams.histogram("orbitmq_longpoll_wake_latency_seconds", "From a matching message's arrival to its held "
                   "pull resuming", _BROKER, node, lp.wake_latency)  # fmt: skip


def _pop(fams: _Families, node: list[str], pop: PopService) -> None:
    s, writer = pop.stats, pop.writer
    for name, doc, value in (
        ("requests", "POP_MESSAGE requests", s.pop_requests),
        ("messages", "Messages popped", s.popped_messages),
        ("orderly_requests", "Orderly (FIFO) pop requests", s.orderly_pops),
        ("acked_messages", "Offsets acked (ACK_MESSAGE and BATCH_ACK_MESSAGE)", s.acks),
        ("change_invisible_time", "CHANGE_INVISIBLETIME requests served", s.change_invisible),
        ("dead_lettered", "Popped messages moved to %DLQ%<group> after retryMaxTimes", s.dead_lettered),
        ("revive_rounds", "Revive scans of the revive log", s.revive_rounds),
        ("acks_merged", "Acks absorbed by the merge buffer (no revive-log write)", s.acks_merged),
        ("checkpoints_merged", "Checkpoints fully acked in the merge buffer (never written)",
         s.checkpoints_merged),
        ("revive_log_write_retries", "Revive-log writes retried after a failed attempt", writer.retries),
        ("revive_log_write_failures", "Revive-log writes given up (refused, or broker stopping)",
         writer.failed),
        ("async_write_fallbacks", "Asynchronous CK/ACK writes that waited: popCkOffsetMaxQueueSize pending",
         writer.fallbacks),
    ):  # fmt: skip
        fams.counter(f"orbitmq_pop_{name}_total", doc, _BROKER, node, value)
    for kind, n in (("single", s.ack_requests), ("batch", s.batch_ack_requests)):
        fams.counter("orbitmq_pop_ack_requests_total", "ACK_MESSAGE / BATCH_ACK_MESSAGE requests",
                     (*_BROKER, "kind"), [*node, kind], n)  # fmt: skip
    fams.gauge("orbitmq_pop_pending_writes", "CK/ACK revive-log writes submitted and not yet stored",
               _BROKER, node, writer.pending)  # fmt: skip
    labels = (*_BROKER, "revive_message_type")
    for kind, n in (("CK", s.checkpoints_written), ("ACK", s.acks_written)):
        fams.counter("rocketmq_pop_revive_in_message_total", "Records put into the revive log", labels,
                     [*node, kind], n)  # fmt: skip
    states = list(pop.revive.states.values())
    for kind, n in (("CK", sum(st.checkpoints_seen for st in states)),
                    ("ACK", sum(st.acks_seen for st in states))):  # fmt: skip
        fams.counter("rocketmq_pop_revive_out_message_total", "Records read back from the revive log", labels,
                     [*node, kind], n)  # fmt: skip
    fams.counter("rocketmq_pop_revive_retry_messages_total", "Messages put into the pop retry topic by "
                 "revive", _BROKER, node, s.revived_messages)  # fmt: skip
    labels = (*_BROKER, "kind")
    for kind, table in (("pop", pop.pop_polling), ("notification", pop.notification_polling)):
        values = [*node, kind]
        fams.gauge("orbitmq_pop_longpoll_held", "POP_MESSAGE / NOTIFICATION requests held now", labels, values,
                   table.parked_count)  # fmt: skip
        for name, doc, value in (
            ("parked", "POP_MESSAGE / NOTIFICATION requests held (long polling)", table.parked),
            ("woken", "Held requests woken by a matching message", table.woken),
            ("timed_out", "Held requests answered when their poll time ran out", table.timed_out),
            ("refused", "Requests answered POLLING_FULL (hold table full)", table.refused),
        ):
            fams.counter(f"orbitmq_pop_longpoll_{name}_total", doc, labels, values, value)


# -- Proxy -------------------------------------------------------------------------------------------------
def _proxy(fams: _Families, app: ProxyApp) -> None:
    node = ["proxy", app.address]
    fams.gauge("rocketmq_proxy_up", "1 while the proxy serves", (*_NODE, "proxy_mode"),
               [*node, app.backend.kind], 1)  # fmt: skip
    c = app.counters
    for name, doc, value in (
        ("grpc_requests", "gRPC calls (a Telemetry stream counts once)", c.grpc_requests),
        ("grpc_errors", "gRPC answers with a status other than OK or MESSAGE_NOT_FOUND", c.grpc_errors),
        ("messages_sent", "Messages sent by producers through the proxy", c.messages_sent),
        ("messages_received", "Messages delivered to consumers through the proxy", c.messages_received),
        ("messages_to_dlq", "Messages forwarded to %DLQ% after their last attempt", c.messages_to_dlq),
        ("receives", "ReceiveMessage calls", c.receives),
        ("empty_receives", "Receives answered MESSAGE_NOT_FOUND", c.empty_receives),
        ("false_empties", "Empty answers given while a message was already waiting", c.false_empties),
        ("long_polls", "Receives allowed to wait (long polling)", c.long_polls),
        ("short_polling_hits", "Receives answered by the first, non-waiting pop", c.short_polling_hits),
        ("notifications", "NOTIFICATION requests sent to brokers (pop with notify)", c.notifications),
        ("notify_pops", "Pops made after a broker said it has messages", c.notify_pops),
        ("notify_pops_empty", "Pops after a notification that found nothing (another consumer was faster)",
         c.notify_pops_empty),
        ("acks", "AckMessage entries acknowledged", c.acks),
        ("ack_errors", "AckMessage entries that failed", c.ack_errors),
        ("invisible_changes", "ChangeInvisibleDuration calls served", c.invisible_changes),
        ("renewals", "Receipt handles renewed for push consumers", c.renewals),
        ("renewal_failures", "Receipt-handle renewals that failed", c.renewal_failures),
        ("transaction_checks", "Orphaned-transaction checks pushed to producers", c.transaction_checks),
        ("registration_failures", "Consumer heartbeats or unregistrations sent for gRPC clients that failed",
         c.registration_failures),
    ):  # fmt: skip
        fams.counter(f"orbitmq_proxy_{name}_total", doc, _NODE, node, value)
    for mode, n in (("pop_with_notify", c.pop_with_notify), ("plain", c.plain_long_polls)):
        fams.counter("orbitmq_proxy_long_poll_modes_total", "Long polls by how they waited: NOTIFICATION to "
                     "every broker, or one broker's long-poll pop", (*_NODE, "mode"), [*node, mode], n)  # fmt: skip
    fams.gauge("orbitmq_proxy_telemetry_streams", "Telemetry streams open now (connected 5.x clients)", _NODE,
               node, c.telemetry_streams)  # fmt: skip


# -- HTTP ----------------------------------------------------------------------------------------------
class MetricsHttpServer(Service):
    """``GET /metrics`` in the Prometheus text format (or OpenMetrics when the scraper asks for it)."""

    has_task = False
    #: A scrape request's head must arrive within this time and size.
    REQUEST_TIMEOUT_S = 10.0
    REQUEST_HEAD_BYTES_MAX = 16 * 1024

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("metrics http")
        self.registry = registry
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def on_start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, limit=self.REQUEST_HEAD_BYTES_MAX
            )
        except OSError as exc:
            raise ConfigError(f"--metrics-port {self.port}: cannot listen on {self.host}: {exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics served on http://%s:%d/metrics", self.host, self.port)

    async def on_stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.REQUEST_TIMEOUT_S)
            status, ctype, body = self._respond(head.decode("latin-1"))
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a scraper that went away or sent garbage: nothing to answer
        finally:
            writer.close()

    def _respond(self, head: str) -> tuple[str, str, bytes]:
        request_line, *header_lines = head.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"only GET /metrics\n"
        if parts[1].split("?", 1)[0] != "/metrics":
            return "404 Not Found", "text/plain", b"metrics are at /metrics\n"
        accept = next(
            (v.strip() for k, _, v in (h.partition(":") for h in header_lines) if k.lower() == "accept"), ""
        )
        encoder, ctype = choose_encoder(accept)
        try:
            body = encoder(self.registry)
        except Exception:
            log.exception("collecting metrics failed")
            return "500 Internal Server Error", "text/plain", b"collecting metrics failed\n"
        return "200 OK", ctype, b"" if parts[0] == "HEAD" else body
