"""PushConsumer: queue-granularity load balancing as RocketMQ's classic consumers do it.

Each owned queue has a :class:`ProcessQueue` and a pull loop that long-polls its broker. Messages go to
the listener either concurrently (a task per message, ``consume_concurrency`` at a time, failed messages
sent back to %RETRY%<group>) or orderly (:mod:`orbitmq.client.orderly`: broker lock per queue, one message
at a time per queue, suspend and retry on failure). CLUSTERING shares the queues among the group's members
and keeps offsets on the brokers; BROADCASTING gives every member every queue and keeps its offsets in a
local file. Offsets only advance past messages that are finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence

from orbitmq.client.allocate import AllocateStrategy, averagely
from orbitmq.client.consumer_base import ConsumerBase
from orbitmq.client.listener import Listener, OrderlyListener, call_listener
from orbitmq.client.model import RETRY_PREFIX, ConsumeFromWhere, MessageExt, MessageModel, MessageQueue
from orbitmq.client.modes import ModeAwareRebalance, RebalancePolicy
from orbitmq.client.orderly import OrderlyConsumption
from orbitmq.client.popconsume import PopConsumption
from orbitmq.client.process_queue import ProcessQueue
from orbitmq.client.pull import PullStatus, pull
from orbitmq.core.errors import ClientError, OrbitError
from orbitmq.protocol.codes import RequestCode

__all__ = ["Listener", "OrderlyListener", "ProcessQueue", "PushConsumer"]

log = logging.getLogger("orbitmq.client")

#: Java's push-consumer delays: flow control 50 ms, after a pull error 3 s, a local retry of a message
#: whose send-back failed 5 s; a queue whose last pull is older than ``PULL_MAX_IDLE_S`` is re-created.
FLOW_CONTROL_DELAY_S = 0.05
PULL_ERROR_DELAY_S = 3.0
LOCAL_RETRY_DELAY_S = 5.0
PULL_MAX_IDLE_S = 120.0
#: How long a shutdown waits for concurrent listeners still running.
SHUTDOWN_WAIT_S = 10.0
#: ``maxReconsumeTimes`` -1 means 16 for concurrent listeners (the broker's default) and unlimited for
#: orderly ones, as in the Java client.
DEFAULT_MAX_RECONSUME_TIMES = 16
JAVA_INT_MAX = 2**31 - 1


class PushConsumer(ConsumerBase):
    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        *,
        message_model: MessageModel = MessageModel.CLUSTERING,
        consume_from_where: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        consume_timestamp_ms: int | None = None,
        allocate: AllocateStrategy = averagely,
        offset_store_dir: str | os.PathLike[str] | None = None,
        consume_concurrency: int = 20,
        max_reconsume_times: int = -1,
        pull_batch_size: int = 32,
        pull_threshold_for_queue: int = 1000,
        pull_threshold_size_for_queue_mib: int = 100,
        consume_concurrently_max_span: int = 2000,
        suspend_current_queue_time_ms: int = 1000,
        long_poll_s: float = 15.0,
        rebalance_interval_s: float = 20.0,
        heartbeat_interval_s: float = 30.0,
        persist_interval_s: float = 5.0,
        lock_interval_s: float = 20.0,
        instance_name: str | None = None,
        rebalance_policy: RebalancePolicy = RebalancePolicy.MIXED,
        pop_invisible_time_ms: int = 60_000,
    ) -> None:
        super().__init__(
            group, namesrv_addrs, message_model=message_model, consume_from_where=consume_from_where,
            consume_timestamp_ms=consume_timestamp_ms, allocate=allocate, offset_store_dir=offset_store_dir,
            rebalance_interval_s=rebalance_interval_s, heartbeat_interval_s=heartbeat_interval_s,
            persist_interval_s=persist_interval_s, instance_name=instance_name,
        )  # fmt: skip
        self.consume_concurrency = consume_concurrency
        self.max_reconsume_times = max_reconsume_times
        self.pull_batch_size, self.long_poll_s = pull_batch_size, long_poll_s
        self.pull_threshold_for_queue = pull_threshold_for_queue
        self.pull_threshold_size_for_queue = pull_threshold_size_for_queue_mib * 1024 * 1024
        self.consume_concurrently_max_span = consume_concurrently_max_span
        self.suspend_current_queue_time_ms = suspend_current_queue_time_ms
        self.lock_interval_s = lock_interval_s
        self._listener: Listener | None = None
        self._orderly: OrderlyConsumption | None = None
        self._sem: asyncio.Semaphore | None = None
        self.process_queues: dict[MessageQueue, ProcessQueue] = {}
        #: Queues given away whose offset commit (and, orderly, unlock) is still under way.
        self._releasing: dict[MessageQueue, asyncio.Task[None]] = {}
        self._consume_tasks: set[asyncio.Task[None]] = set()
        #: Plain counters for metrics and tests.
        self.consumed = 0
        self.sent_back = 0
        #: MIXED: topics in POP mode are assigned by the broker and popped (orbitmq.client.popconsume).
        self.rebalance_policy = rebalance_policy
        self.pop_consumption = PopConsumption(
            self, invisible_time_ms=pop_invisible_time_ms, poll_time_ms=int(long_poll_s * 1000),
            batch_size=pull_batch_size,
        )  # fmt: skip

    def subscribe(self, topic: str, expression: str = "*") -> None:
        self.subscriptions[topic] = expression

    def register_listener(self, listener: Listener) -> None:
        """A concurrent listener: ``(message) -> result`` (see :mod:`orbitmq.client.listener`)."""
        self._listener, self._orderly = listener, None

    def register_orderly_listener(self, listener: OrderlyListener) -> None:
        """An orderly listener: ``(message, ConsumeOrderlyContext) -> result``, one message at a time per
        queue, in queue order; with CLUSTERING each queue is locked on its broker while this member owns it."""
        self._listener = None
        self._orderly = OrderlyConsumption(self, listener)

    @property
    def orderly(self) -> bool:
        return self._orderly is not None

    def assigned_queues(self) -> set[MessageQueue]:
        return {mq for mq, pq in self.process_queues.items() if not pq.dropped}

    def effective_max_reconsume_times(self) -> int:
        if self.max_reconsume_times >= 0:
            return self.max_reconsume_times
        return sys.maxsize if self.orderly else DEFAULT_MAX_RECONSUME_TIMES

    # -- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        if (self._listener is None and self._orderly is None) or not self.subscriptions:
            raise ClientError("subscribe() and register a listener before start()")
        self._sem = asyncio.Semaphore(self.consume_concurrency)
        if self.clustering:  # clustering retries come back through the group's retry topic
            self.subscriptions.setdefault(RETRY_PREFIX + self.group, "*")
        if self.rebalance_policy is not RebalancePolicy.LOCAL and self.clustering and self._orderly is None:
            self.mode_rebalance = ModeAwareRebalance(self, self.rebalance_policy, self.pop_consumption)
        await self._join()
        if self._orderly is not None and self.clustering:
            await self._orderly.start()

    async def shutdown(self) -> None:
        """Stop pulling, let the messages in hand finish (concurrent: up to ``SHUTDOWN_WAIT_S``; orderly: the
        one in each listener), persist the offsets past them, unlock, unregister."""
        await self._leave()
        await self.pop_consumption.stop()  # handlers in progress finish and ack
        if self._orderly is not None:
            await self._orderly.stop()
        pqs = list(self.process_queues.values())
        for pq in pqs:
            if pq.pull_task is not None:
                pq.pull_task.cancel()
            if self._orderly is not None:
                pq.drop()  # its loop stops after the message in hand (whose offset it still commits)
        await asyncio.gather(
            *(t for pq in pqs for t in (pq.pull_task, pq.consume_task) if t),
            *self._releasing.values(),
            return_exceptions=True,
        )
        if self._consume_tasks:  # not dropped yet, so what finishes now still moves the offsets
            await asyncio.wait(set(self._consume_tasks), timeout=SHUTDOWN_WAIT_S)
        for pq in pqs:
            pq.drop()
        await self.persist_offsets(include_dropped=True)
        if self._orderly is not None and self.clustering:
            await self._orderly.unlock(list(self.process_queues))
        await self._unregister()

    # -- rebalance --------------------------------------------------------------------------------------
    async def update_queues(self, topic: str, mine: set[MessageQueue]) -> bool:
        now = time.monotonic()
        for mq, pq in list(self.process_queues.items()):
            if mq.topic == topic and (mq not in mine or pq.pull_expired(now, PULL_MAX_IDLE_S)):
                self._start_release(pq)
        new = sorted(mq for mq in mine - set(self.process_queues) if mq not in self._releasing)
        balanced = not (mine & set(self._releasing))
        if self._orderly is not None and self.clustering and new:
            locked = await self._orderly.lock(new)
            balanced = balanced and len(locked) == len(new)
            new = [mq for mq in new if mq in locked]
        for mq in new:
            try:
                offset = await self.start_offset(mq)
            except OrbitError as exc:
                log.info("%s: no start offset for %s this round: %s", self.group, mq, exc)
                balanced = False
                continue
            self.offset_store.update(mq, offset)
            self._create(mq, offset)
        return balanced

    def _create(self, mq: MessageQueue, offset: int) -> None:
        pq = ProcessQueue(mq, offset, locked=True, last_lock_s=time.monotonic())
        self.process_queues[mq] = pq
        loop = asyncio.get_running_loop()
        pq.pull_task = loop.create_task(self._pull_loop(pq), name=f"pull {mq}")
        if self._orderly is not None:
            pq.consume_task = loop.create_task(self._orderly.consume_loop(pq), name=f"consume {mq}")

    def _start_release(self, pq: ProcessQueue) -> None:
        pq.drop()
        if pq.pull_task is not None:
            pq.pull_task.cancel()
        del self.process_queues[pq.mq]
        task = asyncio.get_running_loop().create_task(self._release(pq), name=f"release {pq.mq}")
        self._releasing[pq.mq] = task

        def released(t: asyncio.Task[None]) -> None:
            if self._releasing.get(pq.mq) is t:
                del self._releasing[pq.mq]

        task.add_done_callback(released)

    async def _release(self, pq: ProcessQueue) -> None:
        """Give a queue away: wait for the message in an orderly listener, persist the offset, unlock."""
        mq = pq.mq
        if self._orderly is not None:
            async with pq.consume_lock:  # the orderly loop leaves once the message in hand is finished
                pass
        try:
            await self.offset_store.persist(mq)
            if self._orderly is not None and self.clustering:
                await self._orderly.unlock([mq])
        except OrbitError as exc:
            log.info("%s: releasing %s: %s", self.group, mq, exc)
        self.offset_store.remove(mq)

    # -- pulling ----------------------------------------------------------------------------------------
    async def _pull_loop(self, pq: ProcessQueue) -> None:
        mq = pq.mq
        while not pq.dropped:
            if self._flow_controlled(pq):
                await asyncio.sleep(FLOW_CONTROL_DELAY_S)
                continue
            try:
                result = await pull(
                    self.instance, self.group, mq, pq.next_offset, self.pull_batch_size,
                    expression=self.subscriptions.get(mq.topic, "*"), sub_version=self.sub_version,
                    commit_offset=self.offset_store.read(mq) if self.clustering else None,
                    suspend_s=self.long_poll_s,
                )  # fmt: skip
            except OrbitError as exc:
                log.info("%s: pull %s failed: %s", self.group, mq, exc)
                await asyncio.sleep(PULL_ERROR_DELAY_S)
                continue
            pq.last_pull_s = time.monotonic()
            if pq.dropped:
                return
            if result.status is PullStatus.FOUND:
                added = pq.put(result.messages, result.next_begin_offset)
                if self._orderly is None:
                    for m in added:
                        self._spawn_consume(pq, m)
            elif result.status is PullStatus.OFFSET_ILLEGAL:
                # the broker moved us (offset reset, or ours fell out of range): what we hold is stale
                log.warning("%s: %s offset moved to %d", self.group, mq, result.next_begin_offset)
                pq.clear(result.next_begin_offset)
                self.offset_store.update(mq, result.next_begin_offset)
                with contextlib.suppress(OrbitError):
                    await self.offset_store.persist(mq)
            else:
                pq.skip_to(result.next_begin_offset)
                if not pq.msgs:  # nothing held: the moved/filtered position is committable as it is
                    self.offset_store.update(mq, pq.commit_offset(), increase_only=False)

    def _flow_controlled(self, pq: ProcessQueue) -> bool:
        if pq.cached_count >= self.pull_threshold_for_queue:
            return True
        if pq.cached_bytes >= self.pull_threshold_size_for_queue:
            return True
        if self._orderly is None and pq.span() > self.consume_concurrently_max_span:
            return True
        # orderly: no lock, no pulls (the lock service renews it, or the queue is given away)
        return self._orderly is not None and self.clustering and not pq.locked

    # -- concurrent consumption -------------------------------------------------------------------------
    def _spawn_consume(self, pq: ProcessQueue, msg: MessageExt, delay_s: float = 0.0) -> None:
        task = asyncio.get_running_loop().create_task(self._consume(pq, msg, delay_s))
        self._consume_tasks.add(task)
        task.add_done_callback(self._consume_tasks.discard)

    async def _consume(self, pq: ProcessQueue, msg: MessageExt, delay_s: float) -> None:
        assert self._listener is not None and self._sem is not None
        if delay_s:
            await asyncio.sleep(delay_s)
        if pq.dropped:
            return  # the new owner gets it from the committed offset
        if self.mode_rebalance is not None:
            self.mode_rebalance.restore_topic(msg)  # a drained POP leftover keeps its own topic
        async with self._sem:
            ok = await call_listener(self.group, self._listener, msg)
        if ok:
            self.consumed += 1
        elif not self.clustering:
            log.warning("%s: BROADCASTING, the message %s failed and is dropped", self.group, msg.msg_id)
            ok = True
        else:
            ok = await self.send_back(msg, delay_level=0)
        if not ok:  # send-back failed: try it again here a little later
            msg.reconsume_times += 1
            self._spawn_consume(pq, msg, LOCAL_RETRY_DELAY_S)
            return
        offset = pq.remove(msg.queue_offset)
        if not pq.dropped:
            self.offset_store.update(pq.mq, offset, increase_only=True)

    async def send_back(self, msg: MessageExt, delay_level: int) -> bool:
        """CONSUMER_SEND_MSG_BACK: 0 lets the broker pick the next retry delay, -1 dead-letters at once."""
        fields = {"offset": msg.commit_log_offset, "group": self.group, "delayLevel": delay_level,
                  "originMsgId": msg.msg_id, "originTopic": msg.topic, "unitMode": False,
                  "maxReconsumeTimes": min(self.effective_max_reconsume_times(), JAVA_INT_MAX)}  # fmt: skip
        try:
            await self.instance.request(
                self.instance.broker_addr(msg.broker_name), RequestCode.CONSUMER_SEND_MSG_BACK, fields
            )
        except OrbitError as exc:
            log.info("%s: send back of %s failed: %s", self.group, msg.msg_id, exc)
            return False
        self.sent_back += 1
        return True

    # -- offsets ----------------------------------------------------------------------------------------
    async def persist_offsets(self, include_dropped: bool = False) -> None:
        mqs = [mq for mq, pq in self.process_queues.items() if include_dropped or not pq.dropped]
        with contextlib.suppress(OrbitError):
            await self.offset_store.persist_all(mqs)
