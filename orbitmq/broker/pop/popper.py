"""POP_MESSAGE and PEEK_MESSAGE: which queues a pop reads, from where, and what it records
(pop-and-storage §1.3, §1.4).

One pop has one ``popTime`` and one revive queue (round robin over ``reviveQueueNum``; 999 for FIFO). With
probability ``popFromRetryProbability`` % it reads the group's pop retry topic first, otherwise after the
normal topic if the batch is not full; FIFO pops never read the retry topic. Every queue that returns
messages gets one checkpoint (offsets as diffs from the first offset read) and one in-flight entry whose
completion moves the group's offset (:mod:`orbitmq.broker.pop.inflight`).

Messages read from a retry topic are re-encoded with the original topic and a ``POP_CK`` property naming
the retry topic's queue and offset, unless ``popResponseReturnActualRetryTopic`` (#7029).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from orbitmq.broker.pop.checkpoints import CheckpointStore
from orbitmq.broker.pop.env import PopEnv
from orbitmq.broker.pop.inflight import PopOffsets, QueueKey
from orbitmq.broker.pop.orderly import OrderInfoManager
from orbitmq.broker.pop.records import PopCheckPoint
from orbitmq.protocol.pop import (
    POP_ORDER_REVIVE_QUEUE,
    ExtraInfo,
    PopMessageResponseHeader,
    PopOffsetInfo,
    pop_retry_topic_v1,
)
from orbitmq.protocol.record import Prop, decode_record, encode_record
from orbitmq.store.api import GetResult, GetStatus, PutResult, RecordFilter, TagFilter

__all__ = ["PopOutcome", "PopQuery", "Popper"]

log = logging.getLogger("orbitmq.broker.pop")

_RESET_STATUSES = (GetStatus.OFFSET_TOO_SMALL, GetStatus.OFFSET_OVERFLOW_BADLY, GetStatus.OFFSET_FOUND_NULL)
_SKIPPED_STATUSES = (
    GetStatus.NO_MATCHED_MESSAGE,
    GetStatus.OFFSET_FOUND_NULL,
    GetStatus.MESSAGE_WAS_REMOVING,
    GetStatus.NO_MATCHED_LOGIC_QUEUE,
)
#: Remembered retry-topic names (→ group, original topic); bounded so hostile names cannot grow it.
RETRY_TOPIC_NAMES_MAX = 100_000


@dataclass(frozen=True, slots=True)
class PopQuery:
    """A validated POP_MESSAGE (or PEEK_MESSAGE)."""

    group: str
    topic: str
    queue_id: int  # -1: every read queue
    read_queue_nums: int
    max_nums: int
    invisible_time: int
    init_mode: int = 0
    order: bool = False
    attempt_id: str | None = None
    tag_filter: TagFilter | None = None
    record_filter: RecordFilter | None = None


@dataclass(slots=True)
class PopOutcome:
    buffers: list[bytes | memoryview]
    header: PopMessageResponseHeader

    @property
    def found(self) -> bool:
        return bool(self.buffers)


@dataclass(slots=True)
class _Batch:
    query: PopQuery
    pop_time: int
    revive_qid: int
    buffers: list[bytes | memoryview] = field(default_factory=list)
    info: PopOffsetInfo = field(default_factory=PopOffsetInfo)
    rest: int = 0
    waits: list[asyncio.Future[PutResult]] = field(default_factory=list)

    @property
    def room(self) -> int:
        return self.query.max_nums - len(self.buffers)


#: ``on_fifo_batch(topic, group, queue_id, visible_at_ms)``: a FIFO batch blocks the queue until then.
FifoBatchListener = Callable[[str, str, int, int], None]


class Popper:
    def __init__(
        self,
        env: PopEnv,
        pop_offsets: PopOffsets,
        checkpoints: CheckpointStore,
        orderly: OrderInfoManager,
        on_fifo_batch: FifoBatchListener | None = None,
    ) -> None:
        self.env = env
        self.pop_offsets = pop_offsets
        self.checkpoints = checkpoints
        self.orderly = orderly
        self.on_fifo_batch = on_fifo_batch
        self._revive_rr = itertools.count()
        self._random = random.Random()
        #: Pop retry topic name → (group, original topic): V1 names cannot be split, so arrivals in a retry
        #: topic are mapped back to the pollers of the original topic through this table (#9632).
        self.retry_topics: dict[str, tuple[str, str]] = {}

    def retry_topic_of(self, topic: str, group: str) -> str:
        name = pop_retry_topic_v1(topic, group)
        if name not in self.retry_topics and len(self.retry_topics) < RETRY_TOPIC_NAMES_MAX:
            self.retry_topics[name] = (group, topic)
        return name

    # -- POP_MESSAGE -------------------------------------------------------------------------------------
    async def pop(self, q: PopQuery) -> PopOutcome:
        env = self.env
        stats = env.stats
        stats.pop_requests += 1
        stats.orderly_pops += q.order
        revive_qid = POP_ORDER_REVIVE_QUEUE if q.order else next(self._revive_rr) % env.revive_queue_num
        batch = _Batch(q, env.now(), revive_qid)
        rand = self._random.randrange(100)
        need_retry = rand < env.config.pop_from_retry_probability
        retry = self.retry_topic_of(q.topic, q.group)
        if need_retry and not q.order:
            self._visit_topic(batch, retry, rand, retry=True)
        visit = self._visit_fifo if q.order else self._visit
        if q.queue_id < 0:
            for i in range(q.read_queue_nums):
                visit(batch, q.topic, (rand + i) % q.read_queue_nums, retry=False)
        else:
            visit(batch, q.topic, q.queue_id, retry=False)
        if not need_retry and not q.order and batch.room > 0:
            self._visit_topic(batch, retry, rand, retry=True)
        if batch.waits:  # synchronous checkpoints (or back-pressure): answer once they are stored
            await asyncio.gather(*(asyncio.shield(w) for w in batch.waits))
        stats.popped_messages += len(batch.buffers)
        info = batch.info
        header = PopMessageResponseHeader(
            pop_time=batch.pop_time,
            invisible_time=q.invisible_time,
            revive_qid=revive_qid,
            rest_num=batch.rest,
            start_offset_info=info.start_offset_info,
            msg_offset_info=info.msg_offset_info,
            order_count_info=info.order_count_info if q.order else None,
        )
        return PopOutcome(batch.buffers, header)

    def _visit_topic(self, batch: _Batch, topic: str, rand: int, *, retry: bool) -> None:
        tc = self.env.topics.select_topic_config(topic)
        if tc is None:
            return
        n = tc.read_queue_nums
        for i in range(n):
            self._visit(batch, topic, (rand + i) % n, retry=retry)

    def _visit(self, batch: _Batch, topic: str, queue_id: int, *, retry: bool) -> None:
        """Pop from one queue into ``batch``. Synchronous from the offset lookup to the in-flight entry,
        so two pops of one queue can never read the same offsets (no lock needed on one event loop)."""
        env = self.env
        q = batch.query
        key: QueueKey = (topic, q.group, queue_id)
        reset = env.offsets.query_then_erase_reset_offset(q.group, topic, queue_id)
        if reset is not None:  # a server-side reset (RIP-48) takes effect at this queue's next pop
            self.pop_offsets.reset(key, reset)
        committed = env.committed_offset(q.group, topic, queue_id, q.init_mode)
        offset = self.pop_offsets.pop_offset(key, committed)
        if batch.room <= 0:
            batch.rest += max(0, env.store.max_offset_in_queue(topic, queue_id) - offset)
            return
        res = self._read(topic, queue_id, offset, batch.room, q)
        if res.status in _RESET_STATUSES:
            log.warning("pop offset %d of %s was invalid (%s): continuing at %d",
                        offset, key, res.status.value, res.next_begin_offset)  # fmt: skip
            offset = res.next_begin_offset
            self.pop_offsets.reset(key, offset)
            res = self._read(topic, queue_id, offset, batch.room, q)
        if res.buffers:
            self._take(batch, topic, queue_id, offset, res, retry=retry)
        elif res.status in _SKIPPED_STATUSES and res.next_begin_offset > offset:
            self.pop_offsets.mock(key, res.next_begin_offset)  # filtered out: move on, behind earlier pops
        batch.rest += max(0, res.max_offset - res.next_begin_offset)

    def _visit_fifo(self, batch: _Batch, topic: str, queue_id: int, *, retry: bool) -> None:
        """FIFO: read from the committed offset unless the queue is blocked by an earlier batch; record the
        batch in the lock table; commit directly (there is no checkpoint)."""
        env = self.env
        q = batch.query
        key: QueueKey = (topic, q.group, queue_id)
        reset = env.offsets.query_then_erase_reset_offset(q.group, topic, queue_id)
        if reset is not None:
            self.orderly.clear(key)
            env.offsets.commit_offset(q.group, topic, queue_id, reset, "pop reset")
        offset = env.committed_offset(q.group, topic, queue_id, q.init_mode)
        if self.orderly.check_block(key, q.attempt_id, batch.pop_time):
            return  # a blocked queue adds no backlog: no wake-up storm (upstream #8592, #9339)
        if batch.room <= 0:
            batch.rest += max(0, env.store.max_offset_in_queue(topic, queue_id) - offset)
            return
        res = self._read(topic, queue_id, offset, batch.room, q)
        if res.status in _RESET_STATUSES:
            offset = res.next_begin_offset
            self.orderly.clear(key)
            env.offsets.commit_offset(q.group, topic, queue_id, offset, "pop")
            res = self._read(topic, queue_id, offset, batch.room, q)
        if res.buffers:
            counts = self.orderly.update(
                key, q.attempt_id, batch.pop_time, q.invisible_time, res.queue_offsets
            )
            batch.info.add_queue(topic, queue_id, offset, res.queue_offsets)
            batch.info.add_order_counts(topic, queue_id, counts)
            batch.buffers.extend(res.buffers)
            if self.on_fifo_batch is not None:
                self.on_fifo_batch(topic, q.group, queue_id, batch.pop_time + q.invisible_time)
        elif res.status in _SKIPPED_STATUSES and res.next_begin_offset > offset:
            env.offsets.commit_offset(
                q.group, topic, queue_id, res.next_begin_offset, "pop"
            )  # upstream #8268
        batch.rest += max(0, res.max_offset - res.next_begin_offset)

    def _read(self, topic: str, queue_id: int, offset: int, count: int, q: PopQuery) -> GetResult:
        return self.env.store.get_messages(
            topic, queue_id, offset, count, tag_filter=q.tag_filter, record_filter=q.record_filter
        )

    def _take(
        self, batch: _Batch, topic: str, queue_id: int, offset: int, res: GetResult, *, retry: bool
    ) -> None:
        env = self.env
        q = batch.query
        key: QueueKey = (topic, q.group, queue_id)
        entry = self.pop_offsets.begin(key, res.next_begin_offset)
        ck = PopCheckPoint(
            start_offset=offset, pop_time=batch.pop_time, invisible_time=q.invisible_time,
            num=len(res.buffers), queue_id=queue_id, topic=topic, cid=q.group, broker_name=env.broker_name,
            queue_offset_diff=[o - offset for o in res.queue_offsets],
        )  # fmt: skip
        wait = self.checkpoints.checkpoint(ck, batch.revive_qid, entry)
        if wait is not None:
            batch.waits.append(wait)
        batch.info.add_queue(topic, queue_id, offset, res.queue_offsets)
        if retry and not env.config.pop_response_return_actual_retry_topic:
            for view in res.buffers:
                batch.buffers.append(self._as_original_topic(view, batch, topic, offset))
        else:
            batch.buffers.extend(res.buffers)

    def _as_original_topic(self, view: memoryview, batch: _Batch, retry_topic: str, ck_offset: int) -> bytes:
        """A retry-topic record re-encoded under the original topic, its handle in ``POP_CK`` (§1.4.12)."""
        rec = decode_record(view)
        q = batch.query
        props = dict(rec.properties)
        props.setdefault(
            Prop.POP_CK,
            ExtraInfo.build(
                ck_offset, batch.pop_time, q.invisible_time, batch.revive_qid, retry_topic,
                self.env.broker_name, rec.queue_id, rec.queue_offset,
            ).encode(),
        )  # fmt: skip
        return encode_record(
            topic=q.topic, body=rec.body, properties=props, queue_id=rec.queue_id, flag=rec.flag,
            queue_offset=rec.queue_offset, physical_offset=rec.physical_offset, sys_flag=rec.sys_flag,
            born_timestamp=rec.born_timestamp, born_host=rec.born_host, store_timestamp=rec.store_timestamp,
            store_host=rec.store_host, reconsume_times=rec.reconsume_times,
            prepared_transaction_offset=rec.prepared_transaction_offset,
        )  # fmt: skip

    # -- NOTIFICATION ------------------------------------------------------------------------------------
    def has_message(
        self,
        group: str,
        topic: str,
        queue_id: int,
        read_queue_nums: int,
        *,
        order: bool = False,
        attempt_id: str | None = None,
    ) -> bool:
        """Upstream ``NotificationProcessor``: does a queue the request covers (or the group's pop retry
        topic, first in one request out of five) hold messages past where the group's next pop starts?
        For FIFO a blocked queue counts as empty, and the retry topic is not looked at."""
        env = self.env
        rand = self._random.randrange(100)
        need_retry = rand % 5 == 0 and not order
        retry = self.retry_topic_of(topic, group)

        def in_queue(name: str, qid: int) -> bool:
            if order and self.orderly.check_block((name, group, qid), attempt_id, env.now()):
                return False
            committed = env.offsets.query_offset(group, name, qid)
            if committed is None:
                committed = env.store.min_offset_in_queue(name, qid)
            offset = self.pop_offsets.pop_offset((name, group, qid), committed)
            return env.store.max_offset_in_queue(name, qid) > offset

        def in_retry() -> bool:
            tc = env.topics.select_topic_config(retry)
            n = tc.read_queue_nums if tc else 0
            return any(in_queue(retry, (rand + i) % n) for i in range(n))

        if need_retry and in_retry():
            return True
        if queue_id < 0:
            found = any(in_queue(topic, (rand + i) % read_queue_nums) for i in range(read_queue_nums))
        else:
            found = in_queue(topic, queue_id)
        return found or (not need_retry and not order and in_retry())

    # -- PEEK_MESSAGE ------------------------------------------------------------------------------------
    def peek(self, q: PopQuery) -> PopOutcome:
        """Messages a pop would read next, without checkpoint, offset or invisibility (upstream peek)."""
        env = self.env
        rand = self._random.randrange(100)
        need_retry = rand % 5 == 0
        buffers: list[bytes | memoryview] = []
        rest = 0
        retry = pop_retry_topic_v1(q.topic, q.group)

        def peek_queue(topic: str, queue_id: int) -> None:
            nonlocal rest
            committed = env.offsets.query_offset(q.group, topic, queue_id)
            if committed is None:
                committed = env.store.min_offset_in_queue(topic, queue_id)
            offset = self.pop_offsets.pop_offset((topic, q.group, queue_id), committed)
            rest += max(0, env.store.max_offset_in_queue(topic, queue_id) - offset)
            room = q.max_nums - len(buffers)
            if room <= 0:
                return
            res = env.store.get_messages(topic, queue_id, offset, room)
            if res.status in (GetStatus.OFFSET_TOO_SMALL, GetStatus.OFFSET_OVERFLOW_BADLY):
                res = env.store.get_messages(topic, queue_id, res.next_begin_offset, room)
            buffers.extend(res.buffers)

        def peek_retry() -> None:
            tc = env.topics.select_topic_config(retry)
            for i in range(tc.read_queue_nums if tc else 0):
                peek_queue(retry, (rand + i) % tc.read_queue_nums if tc else 0)

        if need_retry:
            peek_retry()
        queues = range(q.read_queue_nums) if q.queue_id < 0 else [q.queue_id]
        for i in queues:
            peek_queue(q.topic, (rand + i) % q.read_queue_nums if q.queue_id < 0 else i)
        if not need_retry and len(buffers) < q.max_nums:
            peek_retry()
        header = PopMessageResponseHeader(env.now(), 0, 0, rest)
        return PopOutcome(buffers, header)
