"""The Broker application: state managers, message store, request handlers and background services.

``BrokerApp(BrokerConfig, StoreConfig)`` is a :class:`Service`: ``await start()`` loads the config files,
listens (``listenPort`` 0 picks a free port, see :attr:`BrokerApp.port`), opens the store with the
advertised address as the records' store host, starts the background services, installs the handlers and
registers with every NameServer. ``await stop()`` undoes it in reverse: unregister, answer held pulls,
stop serving, stop delay delivery, persist topics/groups/offsets, flush and checkpoint the store.
Several brokers can run in one process (tests): nothing here is global.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging

from orbitmq.broker.assignment import MessageRequestModeManager
from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.groups import ChannelLike, ConsumerManager, ProducerManager
from orbitmq.broker.handlers import BrokerContext, handler_table
from orbitmq.broker.handlers.assignment import AssignmentHandlers, build_assignment_handlers
from orbitmq.broker.handlers.clients import (
    ClientHousekeepingService,
    notify_consumer_ids_changed,
    on_connection_closed,
)
from orbitmq.broker.locks import RebalanceLockManager
from orbitmq.broker.longpoll import PullRequestHoldService
from orbitmq.broker.offsets import ConsumerOffsetManager, OffsetPersistService
from orbitmq.broker.persist import PersistService
from orbitmq.broker.pop import PopService
from orbitmq.broker.rates import BrokerRates
from orbitmq.broker.registration import BrokerRegistrationService
from orbitmq.broker.schedule import DelayOffsetManager, ScheduleMessageService
from orbitmq.broker.stats import BrokerStats
from orbitmq.broker.subscription_groups import SubscriptionGroupManager
from orbitmq.broker.timer import TimerCheckpointManager, TimerMessageService, normalize_precision_ms
from orbitmq.broker.topics import TopicConfig, TopicConfigManager
from orbitmq.broker.transaction import TransactionalMessageService
from orbitmq.core.clock import Clock, RealClock
from orbitmq.core.errors import ConfigError
from orbitmq.core.service import Service
from orbitmq.net import (
    Connection,
    DispatchTable,
    RemotingClient,
    RemotingServer,
    RequestHandler,
    ServerConfig,
)
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import UniqueIdGenerator
from orbitmq.store import FileMessageStore, MessageStore, StoreConfig
from orbitmq.store.api import DispatchRequest

__all__ = ["BrokerApp"]

log = logging.getLogger("orbitmq.broker")


class BrokerApp(Service):
    """One broker. Attributes other components use: :attr:`config`, :attr:`port`, :attr:`address`,
    :attr:`store` (after start), :attr:`context` (after start) and the managers (``topics``,
    ``subscription_groups``, ``offsets``, ``consumers``, ``producers``, ``locks``)."""

    has_task = False

    def __init__(
        self,
        broker_config: BrokerConfig,
        store_config: StoreConfig,
        *,
        clock: Clock | None = None,
        store: MessageStore | None = None,
        listen_host: str | None = None,
    ) -> None:
        """``store``: a store to use instead of a FileMessageStore on ``store_config`` (the app starts and
        stops it; its records carry its own configured store host). ``listen_host``: the interface to listen
        on when it differs from the advertised ``brokerIP1`` (default: ``brokerIP1``)."""
        super().__init__(f"broker {broker_config.broker_name}")
        _require_ipv4(broker_config.broker_ip1)
        cfg = self.config = broker_config
        self.store_config = store_config
        self.clock: Clock = clock if clock is not None else RealClock()
        root = store_config.store_path_root_dir
        self.topics = TopicConfigManager(root, cfg, self.clock)
        self.subscription_groups = SubscriptionGroupManager(root, cfg, self.clock)
        self.offsets = ConsumerOffsetManager(
            root, self.clock, version_step=cfg.consumer_offset_update_version_step
        )
        self.delay_offsets = DelayOffsetManager(root, self.clock)
        self.request_modes = MessageRequestModeManager(root, self.clock)
        self.assignment: AssignmentHandlers | None = None  # QUERY_ASSIGNMENT & co., made at start
        self.timer_checkpoints = TimerCheckpointManager(root, self.clock)
        self.consumers = ConsumerManager(cfg, on_change=self._on_consumer_change)
        self.producers = ProducerManager(cfg)
        self.locks = RebalanceLockManager(cfg.rebalance_lock_max_live_time)
        self.long_polling = PullRequestHoldService(self.clock)
        self.rates = BrokerRates(self.clock)
        self.stats = BrokerStats()
        self.dispatch = DispatchTable()
        self.dispatch.set_default(_not_ready("starting"))
        self.server = RemotingServer(
            ServerConfig(
                host=listen_host or cfg.broker_ip1, port=cfg.listen_port, name=f"{self.name} remoting"
            ),
            self.dispatch,
            on_disconnect=self._on_disconnect,
        )
        self.namesrv_client = RemotingClient()
        self.registration = BrokerRegistrationService(
            cfg, self.topics, self.namesrv_client, self.clock, lambda: self.address
        )
        self.offset_persist = OffsetPersistService(
            self.offsets, self.clock, cfg.flush_consumer_offset_interval
        )
        self.config_persist = PersistService(
            "ConfigPersistService",
            [self.topics, self.subscription_groups, self.delay_offsets, self.request_modes],
            self.clock,
            cfg.flush_consumer_offset_interval,
        )
        self.housekeeping = ClientHousekeepingService(self.consumers, self.producers, self.locks, self.clock)
        self.schedule: ScheduleMessageService | None = None
        #: Pop consumption (CK/ACK revive log, revive service); exists once the broker has started.
        self.pop: PopService | None = None
        self.timer: TimerMessageService | None = None
        self.transactions: TransactionalMessageService | None = None
        self.context: BrokerContext | None = None
        self._store = store
        self._address: str | None = None

    # -- what others read ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on (the configured ``listenPort``, or the free port that 0 picked)."""
        return self.server.port

    @property
    def address(self) -> str:
        """``brokerIP1:port``, as registered with the NameServers and written into records."""
        return self._address or f"{self.config.broker_ip1}:{self.port}"

    @property
    def store(self) -> MessageStore:
        if self._store is None:
            raise RuntimeError(f"{self.name}: the store exists once the broker has started")
        return self._store

    # -- lifecycle -------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        try:
            await self._start()
        except BaseException:
            log.exception("%s failed to start; stopping what started", self.name)
            await self._shutdown()
            raise

    async def _start(self) -> None:
        await asyncio.to_thread(self._load_configs)
        await self.server.start()
        self._address = f"{self.config.broker_ip1}:{self.server.port}"
        if self._store is None:
            store_host = (self.config.broker_ip1, self.server.port)
            self._store = FileMessageStore(
                dataclasses.replace(self.store_config, store_host=store_host), clock=self.clock
            )
        store = self._store
        await store.start()
        levels = self.config.delay_levels_ms
        self.schedule = ScheduleMessageService(store, self.delay_offsets, levels, self.clock)
        self.timer = TimerMessageService(
            store, self.timer_checkpoints, self.clock,
            precision_ms=normalize_precision_ms(self.config.timer_precision_ms),
            flush_interval_ms=self.config.timer_flush_interval_ms,
        )  # fmt: skip
        self.context = BrokerContext(
            config=self.config, clock=self.clock, store=store, topics=self.topics,
            subscription_groups=self.subscription_groups, offsets=self.offsets, consumers=self.consumers,
            producers=self.producers, locks=self.locks, delay_offsets=self.delay_offsets,
            long_polling=self.long_polling, address=self._address, store_host=store.config.store_host,
            delay_levels_ms=levels, register_now=self.registration.register_now,
            uniq_ids=UniqueIdGenerator(self.config.broker_ip1), boot_timestamp_ms=self.clock.now_ms(),
            rates=self.rates, reconfigure=self.reconfigure, stats=self.stats,
        )  # fmt: skip
        self.pop = PopService(
            self.config, self.clock, store, self.topics, self.subscription_groups, self.offsets,
            self.consumers, store.config.store_host,
        )  # fmt: skip
        self.transactions = TransactionalMessageService(
            store, self.offsets, self.producers, self.topics, self.config, self.clock
        )
        store.add_dispatch_listener(self._on_dispatch)
        self.topics.add_listener(self._on_topic_change)
        for svc in (
            self.long_polling,
            self.schedule,
            self.pop,
            self.timer,
            self.transactions,  # rebuilt from the half and op queues before any request is served
            self.offset_persist,
            self.config_persist,
            self.housekeeping,
        ):
            await svc.start()
        self.assignment = build_assignment_handlers(self.context, self.request_modes, self.namesrv_client)
        handlers = {**handler_table(self.context, self.pop, self.transactions), **self.assignment.table()}
        for code, handler in handlers.items():
            self.dispatch.register(code, handler, replace=True)
        self.dispatch.set_default(None)
        await self.registration.start()
        log.info(
            "%s serving on %s (store %s)", self.name, self.address, self.store_config.store_path_root_dir,
            extra={"event": "broker_started", "broker": self.config.broker_name},
        )  # fmt: skip

    def _load_configs(self) -> None:
        for manager in (self.topics, self.subscription_groups, self.offsets, self.delay_offsets,
                        self.request_modes):  # fmt: skip
            manager.load()

    async def on_stop(self) -> None:
        await self._shutdown()
        log.info(
            "%s stopped", self.name, extra={"event": "broker_stopped", "broker": self.config.broker_name}
        )

    async def _shutdown(self) -> None:
        """Stop everything that runs, in reverse dependency order; re-raise the first failure at the end."""
        self.dispatch.set_default(_not_ready("stopping"))
        errors: list[BaseException] = []
        steps = [
            self.registration.stop,  # UNREGISTER_BROKER first: clients stop being sent here
            self.long_polling.stop,  # answer held pulls now instead of after their 15 s
            *([self.pop.stop_polling] if self.pop is not None else []),  # and held pops
            self.server.stop,
            self.housekeeping.stop,
            *([self.schedule.stop] if self.schedule is not None else []),
            *([self.pop.stop] if self.pop is not None else []),  # before offsets: its last commits count
            *([self.timer.stop] if self.timer is not None else []),  # writes its progress marker
            *([self.transactions.stop] if self.transactions is not None else []),  # last ops, progress
            self.config_persist.stop,  # after the schedule service: its final delay offsets are written
            self.offset_persist.stop,
            *([self._store.stop] if self._store is not None else []),
            self.namesrv_client.close,
        ]
        for step in steps:
            try:
                await step()
            except Exception as exc:
                log.exception("%s: %s failed during shutdown", self.name, getattr(step, "__qualname__", step))
                errors.append(exc)
        if errors:
            raise errors[0]

    def reconfigure(self, config: BrokerConfig) -> None:
        """Put ``config`` in effect in every component that reads it (UPDATE_BROKER_CONFIG; the handler
        allows only keys that are read on each use, see ``handlers/runtime.py``)."""
        self.config = config
        self.topics.broker_config = config
        self.subscription_groups.broker_config = config
        self.consumers.broker_config = config
        self.producers.broker_config = config
        self.registration.config = config
        if self.context is not None:
            self.context.config = config
        log.info("%s: configuration changed at run time", self.name)

    # -- wiring ----------------------------------------------------------------------------------------
    def _on_dispatch(self, req: DispatchRequest) -> None:
        self.rates.put.add()
        self.long_polling.notify_message_arriving(req)
        if self.pop is not None:
            self.pop.on_message_arriving(req)
        if self.schedule is not None:
            self.schedule.on_message_arriving(req.topic)
        if self.timer is not None:
            self.timer.on_dispatch(req)

    def _on_topic_change(self, topic: str, config: TopicConfig | None) -> None:
        self.registration.request_registration()
        self.config_persist.wakeup()
        if self.assignment is not None:
            self.assignment.notifier.on_topic_change(topic)

    def _on_consumer_change(self, group: str, channels: list[ChannelLike]) -> None:
        notify_consumer_ids_changed(group, channels)
        if self.assignment is not None:
            self.assignment.notifier.on_group_change(group)

    def _on_disconnect(self, conn: Connection) -> None:
        on_connection_closed(conn, self.consumers, self.producers, self.long_polling)
        if self.pop is not None:
            self.pop.drop_connection(conn.id)


def _require_ipv4(ip: str) -> None:
    """``brokerIP1`` is advertised as ``ip:port`` and written into every record as a 4-byte host: ali-ons
    splits addresses on ':' and decodes only IPv4 hosts (remoting-protocol §1.8, §4.1)."""
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise ConfigError(
            f"brokerIP1={ip!r}: must be an IPv4 address (clients need IPv4 broker addresses)"
        ) from None


def _not_ready(state: str) -> RequestHandler:
    """Answers every request while the broker is starting or stopping (retriable for clients)."""

    async def handler(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        return cmd.response(ResponseCode.SERVICE_NOT_AVAILABLE, f"broker is {state}")

    return handler
