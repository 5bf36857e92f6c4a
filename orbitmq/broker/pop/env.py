"""What every part of the pop machinery works with: the broker's state and store, the pop configuration,
and the counters a metrics exporter reads (:class:`PopStats`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.groups import ConsumerManager
from orbitmq.broker.offsets import ConsumerOffsetManager
from orbitmq.broker.subscription_groups import SubscriptionGroupManager
from orbitmq.broker.topics import TopicConfigManager
from orbitmq.core.clock import Clock
from orbitmq.protocol.pop import INIT_MODE_MIN, REVIVE_GROUP, revive_topic
from orbitmq.protocol.record import decode_record
from orbitmq.store.api import MessageStore

__all__ = ["ACCESS_MESSAGE_IN_MEMORY_MAX_RATIO", "PopEnv", "PopStats"]

#: ``accessMessageInMemoryMaxRatio`` (store, 40 %): a record within this share of physical memory from the
#: end of the CommitLog counts as "in page cache" (``initPopOffsetByCheckMsgInMem``).
ACCESS_MESSAGE_IN_MEMORY_MAX_RATIO = 40


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


@dataclass(slots=True)
class PopStats:
    """Plain counters of pop consumption (monotonic, read by the metrics exporter)."""

    pop_requests: int = 0
    popped_messages: int = 0
    orderly_pops: int = 0
    acks: int = 0  # acked offsets (single and batch)
    ack_requests: int = 0
    batch_ack_requests: int = 0
    change_invisible: int = 0
    checkpoints_written: int = 0
    acks_written: int = 0
    acks_merged: int = 0  # acks absorbed by the merge buffer (no revive-log write)
    checkpoints_merged: int = 0  # checkpoints fully acked in the buffer (never written)
    revived_messages: int = 0
    dead_lettered: int = 0
    revive_rounds: int = 0


@dataclass(eq=False)
class PopEnv:
    config: BrokerConfig
    clock: Clock
    store: MessageStore
    topics: TopicConfigManager
    subscription_groups: SubscriptionGroupManager
    offsets: ConsumerOffsetManager
    consumers: ConsumerManager
    #: Born/store host of the revive-log records.
    store_host: tuple[str, int]
    stats: PopStats = field(default_factory=PopStats)
    physical_memory: int = field(default_factory=_physical_memory)

    @property
    def broker_name(self) -> str:
        return self.config.broker_name

    @property
    def revive_topic(self) -> str:
        return revive_topic(self.config.broker_cluster_name)

    @property
    def revive_queue_num(self) -> int:
        return self.config.revive_queue_num

    def now(self) -> int:
        return self.clock.now_ms()

    # -- offsets -----------------------------------------------------------------------------------------
    def committed_offset(self, group: str, topic: str, queue_id: int, init_mode: int) -> int:
        """The group's committed offset, initialised (and committed) on first use (upstream #8402)."""
        offset = self.offsets.query_offset(group, topic, queue_id)
        if offset is None:
            offset = self.init_offset(topic, queue_id, init_mode)
            self.offsets.commit_offset(group, topic, queue_id, offset, "pop init")
        return offset

    def init_offset(self, topic: str, queue_id: int, init_mode: int) -> int:
        """Upstream ``getInitOffset``: MIN (and every retry topic) → the queue's min offset; MAX → the last
        existing message, or 0 for a queue whose first message is still "in page cache"."""
        store = self.store
        if init_mode == INIT_MODE_MIN or topic.startswith("%RETRY%"):
            return store.min_offset_in_queue(topic, queue_id)
        if (
            self.config.init_pop_offset_by_check_msg_in_mem
            and store.min_offset_in_queue(topic, queue_id) <= 0
        ):
            first = store.get_messages(topic, queue_id, 0, 1)
            if first.buffers:
                phy = decode_record(first.buffers[0], with_body=False).physical_offset
                window = self.physical_memory * ACCESS_MESSAGE_IN_MEMORY_MAX_RATIO // 100
                if store.max_physical_offset - phy <= window:
                    return 0
        return max(store.max_offset_in_queue(topic, queue_id) - 1, 0)

    def revive_progress(self, revive_qid: int) -> int | None:
        return self.offsets.query_offset(REVIVE_GROUP, self.revive_topic, revive_qid)

    def commit_revive_progress(self, revive_qid: int, offset: int) -> None:
        current = self.revive_progress(revive_qid)
        if current is None or offset != current:
            self.offsets.commit_offset(REVIVE_GROUP, self.revive_topic, revive_qid, offset, "revive")
