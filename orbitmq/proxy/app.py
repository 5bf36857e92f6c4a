"""The Proxy application: a grpc.aio server for ``apache.rocketmq.v2.MessagingService`` over a backend.

``ProxyApp(config, backend)`` is a :class:`Service`: ``await start()`` starts the backend, the background
services (producer-group registration, handle renewal, idle-client cleanup) and the gRPC server on
``grpcServerPort`` (0 picks a free port: read :attr:`ProxyApp.port`); ``await stop()`` answers parked
receives at once, stops serving (running calls get ``grpcShutdownTimeSeconds``), then the services and the
backend. Several proxies can run in one process.

    backend = LocalBackend(broker_app)                      # inside one process with a BrokerApp
    backend = ClusterBackend(["127.0.0.1:9876"])            # against a NameServer cluster
    proxy = ProxyApp(ProxyConfig(grpc_server_port=0), backend)
    await proxy.start(); ... proxy.port ...; await proxy.stop()
"""

from __future__ import annotations

import logging

import grpc
from rocketmq.grpc_protocol import service_pb2_grpc as sgrpc

from orbitmq.core.clock import Clock, RealClock
from orbitmq.core.errors import ConfigError
from orbitmq.core.service import Service
from orbitmq.proxy.backends.base import Backend
from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.consumer import Receiver
from orbitmq.proxy.counters import ProxyCounters
from orbitmq.proxy.processor import Processor
from orbitmq.proxy.service import MessagingService

__all__ = ["ProxyApp"]

log = logging.getLogger("orbitmq.proxy")

#: How often clients that went silent without NotifyClientTermination are forgotten.
_CLIENT_SCAN_S = 10.0


class _ClientCleaner(Service):
    def __init__(self, proc: Processor, receiver: Receiver) -> None:
        super().__init__("proxy idle-client cleaner")
        self.proc, self.receiver = proc, receiver

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(_CLIENT_SCAN_S)
            for session in self.proc.expire_idle_clients():
                log.info("client %s silent for too long: forgotten", session.client_id)
                await self.receiver.client_gone(session)


class ProxyApp(Service):
    """Attributes others read: :attr:`config`, :attr:`port`, :attr:`address`, :attr:`counters`,
    :attr:`backend`."""

    has_task = False

    def __init__(
        self,
        config: ProxyConfig,
        backend: Backend,
        *,
        host: str = "127.0.0.1",
        clock: Clock | None = None,
    ) -> None:
        super().__init__("proxy")
        self.config, self.backend, self.host = config, backend, host
        self.clock: Clock = clock if clock is not None else RealClock()
        self.counters = ProxyCounters()
        self.port = config.grpc_server_port
        self._server: grpc.aio.Server | None = None
        self.processor: Processor | None = None
        self.receiver: Receiver | None = None
        self._cleaner: _ClientCleaner | None = None
        self._service: MessagingService | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def on_start(self) -> None:
        try:
            await self._start()
        except BaseException:
            log.exception("proxy failed to start; stopping what started")
            await self._shutdown()
            raise

    async def _start(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.config.grpc_max_inbound_message_size),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ]
        )
        port = server.add_insecure_port(f"{self.host}:{self.config.grpc_server_port}")
        if port == 0:
            raise ConfigError(f"cannot listen on {self.host}:{self.config.grpc_server_port} (grpcServerPort)")
        self.port = port
        self._server = server
        await self.backend.start()
        proc = self.processor = Processor(
            self.config, self.backend, self.clock, self.counters, listen=(self.host, port)
        )
        receiver = self.receiver = Receiver(proc)
        self._service = MessagingService(proc, receiver)
        sgrpc.add_MessagingServiceServicer_to_server(self._service, server)
        await proc.registration.start()
        await proc.members.start()
        await receiver.start()
        self._cleaner = _ClientCleaner(proc, receiver)
        await self._cleaner.start()
        await server.start()
        log.info("proxy (%s mode) serving gRPC on %s", self.backend.kind, self.address)

    async def on_stop(self) -> None:
        await self._shutdown()
        log.info("proxy stopped")

    async def _shutdown(self) -> None:
        errors: list[BaseException] = []
        if self.receiver is not None:
            await self.receiver.stop()  # parked receives answer now instead of after their poll time
        if self._service is not None:
            self._service.close_streams()
        if self._server is not None:
            await self._server.stop(self.config.grpc_shutdown_time_seconds)
        registrations = (self.processor.registration, self.processor.members) if self.processor else ()
        for svc in (self._cleaner, *registrations):
            if svc is not None:
                try:
                    await svc.stop()
                except Exception as exc:
                    errors.append(exc)
        try:
            await self.backend.stop()
        except Exception as exc:
            errors.append(exc)
        if errors:
            raise errors[0]
