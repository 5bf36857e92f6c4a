"""The broker's pop machinery in one service: the revive-log writer, the in-flight offsets, pop, ack and
change of invisible time, and the revive service. :class:`PopService` is what the broker app starts and
stops and what the pop request handlers call; its counters are what a metrics exporter reads.
"""

from __future__ import annotations

import asyncio
import logging

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.groups import ConsumerManager
from orbitmq.broker.offsets import ConsumerOffsetManager
from orbitmq.broker.persist import PersistService
from orbitmq.broker.pop.acker import Acker
from orbitmq.broker.pop.checkpoints import CheckpointStore
from orbitmq.broker.pop.env import PopEnv, PopStats
from orbitmq.broker.pop.inflight import PopOffsets
from orbitmq.broker.pop.orderly import OrderInfoManager
from orbitmq.broker.pop.polling import PopLongPollingService
from orbitmq.broker.pop.popper import Popper
from orbitmq.broker.pop.revive import PopReviveService
from orbitmq.broker.pop.writer import ReviveLogWriter
from orbitmq.broker.subscription_groups import SubscriptionGroupManager
from orbitmq.broker.topics import TopicConfigManager
from orbitmq.core.clock import Clock
from orbitmq.core.service import Service
from orbitmq.protocol.pop import parse_pop_retry_topic_v2
from orbitmq.store.api import DispatchRequest, MessageStore

__all__ = ["PopService"]

log = logging.getLogger("orbitmq.broker.pop")


class PopService(Service):
    """Pop consumption of one broker. Counters: :attr:`stats` (pops, acks, revives, ...) and the
    writer's (:attr:`pending_writes`, :attr:`fallbacks`, :attr:`retries`, store latency)."""

    has_task = False

    def __init__(
        self,
        config: BrokerConfig,
        clock: Clock,
        store: MessageStore,
        topics: TopicConfigManager,
        subscription_groups: SubscriptionGroupManager,
        offsets: ConsumerOffsetManager,
        consumers: ConsumerManager,
        store_host: tuple[str, int],
    ) -> None:
        super().__init__("PopService", clock)
        env = self.env = PopEnv(
            config, clock, store, topics, subscription_groups, offsets, consumers, store_host
        )
        self.writer = ReviveLogWriter(store, clock, max_pending=config.pop_ck_offset_max_queue_size)
        self.pop_offsets = PopOffsets(offsets)
        self.checkpoints = CheckpointStore(env, self.writer, self.pop_offsets)
        self.orderly = OrderInfoManager(store.config.store_path_root_dir, clock)
        self.orderly_persist = PersistService(
            "ConsumerOrderInfoPersist", [self.orderly], clock, config.flush_consumer_offset_interval
        )
        self.popper = Popper(env, self.pop_offsets, self.checkpoints, self.orderly, self._on_fifo_batch)
        self.acker = Acker(env, self.checkpoints, self.orderly, self._wake_later)
        self.revive = PopReviveService(env, self.writer, self._learn_retry_topic)
        total, per_key = config.max_pop_polling_size, config.pop_polling_size
        self.pop_polling = PopLongPollingService(
            "PopLongPollingService", clock, max_total=total, max_per_key=per_key
        )
        self.notification_polling = PopLongPollingService(
            "NotificationLongPollingService", clock, max_total=total, max_per_key=per_key, notify_last=True
        )
        offsets.add_reset_listener(self._on_offset_reset)

    # -- counters ----------------------------------------------------------------------------------------
    @property
    def stats(self) -> PopStats:
        return self.env.stats

    @property
    def pending_writes(self) -> int:
        return self.writer.pending

    @property
    def fallbacks(self) -> int:
        return self.writer.fallbacks

    @property
    def retries(self) -> int:
        return self.writer.retries

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        await asyncio.to_thread(self.orderly.load)
        for svc in self._services():
            await svc.start()

    async def stop_polling(self) -> None:
        """Answer every held pop and notification now (broker shutdown, before the server stops)."""
        await self.pop_polling.stop()
        await self.notification_polling.stop()

    def _services(self) -> list[Service]:
        return [
            self.writer,
            self.revive,
            self.checkpoints.buffer,  # stops before revive and writer: it writes what it holds
            self.orderly_persist,
            self.pop_polling,
            self.notification_polling,
        ]

    async def on_stop(self) -> None:
        """Held requests are answered first, revive stops before the writer (it writes through it), and
        outstanding writes get their chance last."""
        for svc in reversed(self._services()):
            try:
                await svc.stop()
            except Exception:
                log.exception("stopping %s failed", svc.name)

    # -- wake-ups ----------------------------------------------------------------------------------------
    def on_message_arriving(self, req: DispatchRequest) -> None:
        """A record reached a consume queue (the store's dispatch listener): wake held pops and
        notifications of every group waiting on its topic; a pop retry topic wakes its group's pollers of
        the original topic, whatever the naming version."""
        topic = req.topic
        mapped = self.popper.retry_topics.get(topic) or parse_pop_retry_topic_v2(topic)
        for polling in (self.pop_polling, self.notification_polling):
            if mapped is not None:
                group, original = mapped
                polling.notify_arrival(original, group, None, req.tags_code, req.properties)
                continue
            for group in polling.groups_of(topic):
                polling.notify_arrival(topic, group, req.queue_id, req.tags_code, req.properties)

    def _wake_later(self, topic: str, group: str, queue_id: int, delay_s: float) -> None:
        for polling in (self.pop_polling, self.notification_polling):
            polling.wake_later(delay_s, topic, group, queue_id)

    def _on_fifo_batch(self, topic: str, group: str, queue_id: int, visible_at_ms: int) -> None:
        """A FIFO batch blocks its queue: wake the group's pollers when it becomes visible again
        (upstream ``enableNotifyAfterPopOrderLockRelease``)."""
        self._wake_later(topic, group, queue_id, max(0, visible_at_ms - self.env.now()) / 1000)

    def drop_connection(self, conn_id: int) -> None:
        self.pop_polling.drop_connection(conn_id)
        self.notification_polling.drop_connection(conn_id)

    def _on_offset_reset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """A server-side reset: pops in flight on the queue no longer move its offset (their checkpoints
        still revive unacked messages); the next pop of the queue starts at the reset offset. A pop or
        notification held on the queue looks again now: a reset back in time has messages for it."""
        self.pop_offsets.forget((topic, group, queue_id))
        self.orderly.clear((topic, group, queue_id))
        self.pop_polling.notify_arrival(topic, group, queue_id)
        self.notification_polling.notify_arrival(topic, group, queue_id)

    def _learn_retry_topic(self, retry_topic: str, group: str, topic: str) -> None:
        self.popper.retry_topics.setdefault(retry_topic, (group, topic))
