"""OrbitMQ inside your own process, for tests: NameServer, Broker and gRPC Proxy on free ports in a temp dir.

Two ways to run it, same object::

    with EmbeddedOrbitMQ() as mq:            # servers on their own event loop, in a background thread:
        producer = Producer(namesrv=mq.namesrv_addr)   # for synchronous code and any client library

    async with EmbeddedOrbitMQ() as mq:      # servers on the running event loop (asyncio tests)
        ...

``namesrv_addr`` is what remoting clients (ali-ons, the Java/Python remoting SDKs, the OrbitMQ SDK) are
given; ``proxy_endpoint`` what the official RocketMQ 5 clients are given (their ``endpoints``; the proxy runs
in local mode, calling the broker in-process); ``broker_addr`` is the broker itself; ``metrics_url`` the
Prometheus endpoint when ``metrics=True``.
Configuration uses RocketMQ's property names (``properties={"autoCreateTopicEnable": "false"}``), exactly as
``orbitmq standalone --set``; a key no component knows is a :class:`~orbitmq.core.errors.ConfigError`.
Everything stops and the temp dir is removed on exit. The pytest fixtures are in
:mod:`orbitmq.testing.pytest_plugin`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from orbitmq.admin import AdminClient
from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig
from orbitmq.cli.config import broker_config, namesrv_config, proxy_config, split_by_component, store_config
from orbitmq.cli.metrics import MetricsHttpServer, OrbitCollector, metrics_registry
from orbitmq.core.service import Service
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.proxy import ProxyApp, ProxyConfig
from orbitmq.proxy.backends.local import LocalBackend
from orbitmq.store import StoreConfig

__all__ = ["EmbeddedOrbitMQ"]

T = TypeVar("T")

#: Defaults for tests, any of them overridable with ``properties``: store sizes (RocketMQ's 1 GiB segments and
#: 5 M index slots are for production disks; small files are created and removed fast), and a short grace
#: for gRPC calls still running when the proxy stops (a client left connected must not delay a test 30 s).
TEST_DEFAULTS: Mapping[str, str] = {
    "mappedFileSizeCommitLog": str(64 * 1024 * 1024),
    "mappedFileSizeConsumeQueue": str(30_000 * 20),
    "maxHashSlotNum": "50000",
    "maxIndexNum": "200000",
    "grpcShutdownTimeSeconds": "1",
}
_COMPONENTS = ["store", "broker", "namesrv", "proxy"]
#: How long the synchronous form waits for the servers to start or stop.
START_STOP_TIMEOUT_S = 60.0


class EmbeddedOrbitMQ:
    """A NameServer, a Broker and a Proxy (and the metrics endpoint when ``metrics``) in this process."""

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        properties: Mapping[str, str] | None = None,
        metrics: bool = False,
    ) -> None:
        """``data_dir``: where the broker stores (kept afterwards); by default a temp dir, removed on stop.
        ``properties``: RocketMQ-named store / broker / NameServer / proxy keys."""
        self.host = host
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self._data_dir: Path | None = None
        self._properties = {**TEST_DEFAULTS, **(properties or {})}
        split_by_component(self._properties, _COMPONENTS)  # unknown keys fail here, not at start
        self._metrics = metrics
        self.namesrv: NamesrvApp | None = None
        self.broker: BrokerApp | None = None
        self.proxy: ProxyApp | None = None
        self.metrics_server: MetricsHttpServer | None = None
        self._started: list[Service] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the synchronous form's own loop
        self._thread: threading.Thread | None = None

    # -- addresses -------------------------------------------------------------------------------------
    @property
    def namesrv_addr(self) -> str:
        """``host:port`` of the NameServer: what remoting clients are given (``namesrvAddr``)."""
        return self._running(self.namesrv).addr

    @property
    def broker_addr(self) -> str:
        return self._running(self.broker).address

    @property
    def proxy_endpoint(self) -> str:
        """``host:port`` of the gRPC proxy: the official RocketMQ 5 clients' ``endpoints``."""
        return self._running(self.proxy).address

    @property
    def metrics_url(self) -> str:
        """``http://host:port/metrics`` (only with ``metrics=True``)."""
        if not self._metrics:
            raise RuntimeError("EmbeddedOrbitMQ(metrics=True) serves metrics; this one was made without")
        return f"http://{self._running(self.metrics_server).address}/metrics"

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("EmbeddedOrbitMQ is not running")
        return self._data_dir

    def _running(self, app: T | None) -> T:
        if app is None or not self._started:
            raise RuntimeError("EmbeddedOrbitMQ is not running: use it as a (async) context manager")
        return app

    # -- asynchronous form -----------------------------------------------------------------------------
    async def start(self) -> EmbeddedOrbitMQ:
        if self._started:
            raise RuntimeError("EmbeddedOrbitMQ is already running")
        self._data_dir = self._given_dir or Path(tempfile.mkdtemp(prefix="orbitmq-embedded-"))
        parts = split_by_component(self._properties, _COMPONENTS)
        try:
            self.namesrv = NamesrvApp(namesrv_config(parts["namesrv"], NamesrvConfig(host=self.host, port=0)))
            await self._start(self.namesrv)
            base = BrokerConfig(broker_ip1=self.host, listen_port=0)
            bcfg = dataclasses.replace(
                broker_config(parts["broker"], base), namesrv_addr=(self.namesrv.addr,)
            )
            scfg = store_config(
                parts["store"], StoreConfig(store_path_root_dir=str(self._data_dir / "store"))
            )
            self.broker = BrokerApp(bcfg, scfg)
            await self._start(self.broker)
            pcfg = dataclasses.replace(proxy_config(parts["proxy"], ProxyConfig()), grpc_server_port=0)
            self.proxy = ProxyApp(pcfg, LocalBackend(self.broker), host=self.host)
            await self._start(self.proxy)
            if self._metrics:
                collector = OrbitCollector()
                collector.add_namesrv(self.namesrv)
                collector.add_broker(self.broker)
                collector.add_proxy(self.proxy)
                self.metrics_server = MetricsHttpServer(metrics_registry(collector), self.host, 0)
                await self._start(self.metrics_server)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _start(self, service: Service) -> None:
        await service.start()
        self._started.append(service)

    async def stop(self) -> None:
        """Stop what started, in reverse order; remove the temp dir. Safe to call twice."""
        started, self._started = self._started, []
        errors: list[BaseException] = []
        for service in reversed(started):
            try:
                await service.stop()
            except Exception as exc:
                errors.append(exc)
        if self._given_dir is None and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
        if errors:
            raise errors[0]

    async def create_topic_async(
        self, topic: str, *, queues: int = 8, message_type: str | None = None
    ) -> None:
        """Create ``topic`` (``message_type``: NORMAL, FIFO, DELAY, TRANSACTION) the way ``orbitmq admin
        topic create`` does; its route is on the NameServer when this returns."""
        async with AdminClient(self.namesrv_addr) as admin:
            await admin.create_topic(topic, queues=queues, message_type=message_type)

    async def __aenter__(self) -> EmbeddedOrbitMQ:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- synchronous form: the servers run on a loop of their own, in a daemon thread ------------------
    def __enter__(self) -> EmbeddedOrbitMQ:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_run_loop, args=(loop,), name="orbitmq-embedded", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self.run(self.start())
        except BaseException:
            self._close_loop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.run(self.stop())
        finally:
            self._close_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = START_STOP_TIMEOUT_S) -> T:
        """Synchronous form only: run ``coro`` on the servers' loop and wait for its result (e.g.
        ``mq.run(some_broker_call())``)."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("run() is for the synchronous form (with EmbeddedOrbitMQ() as mq: ...)")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout_s)

    def create_topic(self, topic: str, *, queues: int = 8, message_type: str | None = None) -> None:
        """Synchronous form of :meth:`create_topic_async`."""
        self.run(self.create_topic_async(topic, queues=queues, message_type=message_type))

    def _close_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_STOP_TIMEOUT_S)


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
