"""The broker's pop machinery in one service: the revive-log writer, the in-flight offsets, pop, ack and
change of invisible time, and the revive service. :class:`PopService` is what the broker app starts and
stops and what the pop request handlers call; its counters are what a metrics exporter reads.
"""

from __future__ import annotations

import logging

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.groups import ConsumerManager, SubscriptionGroupManager
from orbitmq.broker.offsets import ConsumerOffsetManager
from orbitmq.broker.pop.acker import Acker
from orbitmq.broker.pop.checkpoints import CheckpointStore
from orbitmq.broker.pop.env import PopEnv, PopStats
from orbitmq.broker.pop.inflight import PopOffsets
from orbitmq.broker.pop.popper import Popper
from orbitmq.broker.pop.revive import PopReviveService
from orbitmq.broker.pop.writer import ReviveLogWriter
from orbitmq.broker.topics import TopicConfigManager
from orbitmq.core.clock import Clock
from orbitmq.core.service import Service
from orbitmq.store.api import MessageStore

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
        self.popper = Popper(env, self.pop_offsets, self.checkpoints)
        self.acker = Acker(env, self.checkpoints)
        self.revive = PopReviveService(env, self.writer, self._learn_retry_topic)
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
        await self.writer.start()
        await self.revive.start()

    async def on_stop(self) -> None:
        """Revive stops first (it writes through the writer), then outstanding writes get their chance."""
        for svc in (self.revive, self.writer):
            try:
                await svc.stop()
            except Exception:
                log.exception("stopping %s failed", svc.name)

    def _on_offset_reset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """A server-side reset: pops in flight on the queue no longer move its offset (their checkpoints
        still revive unacked messages); the next pop of the queue starts at the reset offset."""
        self.pop_offsets.forget((topic, group, queue_id))

    def _learn_retry_topic(self, retry_topic: str, group: str, topic: str) -> None:
        self.popper.retry_topics.setdefault(retry_topic, (group, topic))
