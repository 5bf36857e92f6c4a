"""LitePullConsumer (RocketMQ's ``DefaultLitePullConsumer``): the application asks for messages with
:meth:`LitePullConsumer.poll` instead of registering a listener.

Queues come either from :meth:`~LitePullConsumer.subscribe` (the group's rebalance, the same as the push
consumer's) or from :meth:`~LitePullConsumer.assign` (the application's own choice; no group membership).
Each queue has a pull loop that long-polls its broker and caches what it gets (bounded per queue and in
total); ``poll`` hands out one cached batch of one queue at a time, round robin over the queues that are not
paused, and records the position after it as that queue's *consumed* offset.

Commits: with ``auto_commit`` (default) ``poll`` commits the consumed offsets of the previous polls every
``auto_commit_interval_s`` (so a batch is committed only when the application comes back for more), and so
do a queue's removal by a rebalance and :meth:`~LitePullConsumer.shutdown`; otherwise only
:meth:`~LitePullConsumer.commit` does. :meth:`~LitePullConsumer.seek` moves a queue and drops its cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence

from orbitmq.client.allocate import AllocateStrategy, averagely
from orbitmq.client.consumer_base import ConsumerBase
from orbitmq.client.model import ConsumeFromWhere, MessageExt, MessageModel, MessageQueue
from orbitmq.client.process_queue import ProcessQueue
from orbitmq.client.pull import PullStatus, pull
from orbitmq.core.errors import ClientError, OrbitError
from orbitmq.protocol.codes import RequestCode

__all__ = ["LitePullConsumer", "QueuesChanged"]

log = logging.getLogger("orbitmq.client")

#: ``(topic, queues now held for it)``: called after every change of a subscribed topic's queues.
QueuesChanged = Callable[[str, set[MessageQueue]], None]

FLOW_CONTROL_DELAY_S = 0.05
PULL_ERROR_DELAY_S = 3.0


class LitePullConsumer(ConsumerBase):
    consume_type = "CONSUME_ACTIVELY"
    persists_periodically = False

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
        auto_commit: bool = True,
        auto_commit_interval_s: float = 5.0,
        pull_batch_size: int = 10,
        pull_threshold_for_queue: int = 1000,
        pull_threshold_for_all: int = 10_000,
        poll_timeout_s: float = 5.0,
        long_poll_s: float = 15.0,
        rebalance_interval_s: float = 20.0,
        heartbeat_interval_s: float = 30.0,
        instance_name: str | None = None,
        on_queues_changed: QueuesChanged | None = None,
    ) -> None:
        super().__init__(
            group, namesrv_addrs, message_model=message_model, consume_from_where=consume_from_where,
            consume_timestamp_ms=consume_timestamp_ms, allocate=allocate, offset_store_dir=offset_store_dir,
            rebalance_interval_s=rebalance_interval_s, heartbeat_interval_s=heartbeat_interval_s,
            instance_name=instance_name,
        )  # fmt: skip
        self.auto_commit, self.auto_commit_interval_s = auto_commit, auto_commit_interval_s
        self.pull_batch_size, self.poll_timeout_s, self.long_poll_s = (
            pull_batch_size,
            poll_timeout_s,
            long_poll_s,
        )
        self.pull_threshold_for_queue, self.pull_threshold_for_all = (
            pull_threshold_for_queue,
            pull_threshold_for_all,
        )
        self.on_queues_changed = on_queues_changed
        self.queues: dict[MessageQueue, ProcessQueue] = {}
        #: Offset after the last message ``poll`` returned (or the seek / start position), per queue.
        self.consumed: dict[MessageQueue, int] = {}
        self.paused: set[MessageQueue] = set()
        self._assigned: set[MessageQueue] | None = None
        self._arrived = asyncio.Event()
        self._last_served: MessageQueue | None = None
        self._next_auto_commit = 0.0
        self._started = False

    # -- what to consume --------------------------------------------------------------------------------
    def subscribe(self, topic: str, expression: str = "*") -> None:
        if self._assigned is not None:
            raise ClientError("subscribe() and assign() cannot be mixed")
        if self._started:
            raise ClientError("subscribe() before start()")
        self.subscriptions[topic] = expression

    async def assign(self, queues: Iterable[MessageQueue]) -> None:
        """Consume exactly these queues (no rebalance); may be called again to change them."""
        if self.subscriptions:
            raise ClientError("subscribe() and assign() cannot be mixed")
        self._assigned = set(queues)
        if self._started:
            await self._apply_assignment()

    async def _apply_assignment(self) -> None:
        assert self._assigned is not None
        for topic in {mq.topic for mq in self._assigned} | {mq.topic for mq in self.queues}:
            await self.update_queues(topic, {mq for mq in self._assigned if mq.topic == topic})

    async def fetch_message_queues(self, topic: str) -> list[MessageQueue]:
        """The topic's readable queues, from a fresh route."""
        return sorted((await self.instance.route(topic, refresh=True)).subscribe_queues)

    def assignment(self) -> set[MessageQueue]:
        return set(self.queues)

    def pause(self, queues: Iterable[MessageQueue]) -> None:
        """Stop pulling these queues and hand out nothing cached for them until :meth:`resume`."""
        self.paused |= set(queues)

    def resume(self, queues: Iterable[MessageQueue]) -> None:
        self.paused -= set(queues)
        self._arrived.set()

    # -- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start; queues come from ``subscribe()`` calls made before, or ``assign()`` before or after."""
        self._started = True
        self._next_auto_commit = time.monotonic() + self.auto_commit_interval_s
        await self._join()
        if self._assigned is not None:
            await self._apply_assignment()

    async def shutdown(self) -> None:
        await self._leave()
        for pq in self.queues.values():
            pq.drop()
            if pq.pull_task is not None:
                pq.pull_task.cancel()
        await asyncio.gather(
            *(pq.pull_task for pq in self.queues.values() if pq.pull_task), return_exceptions=True
        )
        if self.auto_commit:
            with contextlib.suppress(OrbitError):
                await self.commit()
        await self._unregister()

    async def __aenter__(self) -> LitePullConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    # -- queues -----------------------------------------------------------------------------------------
    async def update_queues(self, topic: str, mine: set[MessageQueue]) -> bool:
        gone = [mq for mq in self.queues if mq.topic == topic and mq not in mine]
        for mq in gone:
            pq = self.queues.pop(mq)
            pq.drop()
            if pq.pull_task is not None:
                pq.pull_task.cancel()
            if self.auto_commit and mq in self.consumed:
                self.offset_store.update(mq, self.consumed[mq])
                with contextlib.suppress(OrbitError):
                    await self.offset_store.persist(mq)
            self.offset_store.remove(mq)
            self.consumed.pop(mq, None)
        balanced = True
        new = sorted(mine - set(self.queues))
        for mq in new:
            try:
                offset = await self.start_offset(mq)
            except OrbitError as exc:
                log.info("%s: no start offset for %s this round: %s", self.group, mq, exc)
                balanced = False
                continue
            pq = ProcessQueue(mq, offset)
            self.queues[mq], self.consumed[mq] = pq, offset
            pq.pull_task = asyncio.get_running_loop().create_task(self._pull_loop(pq), name=f"lite pull {mq}")
        if (gone or new) and self.on_queues_changed is not None and self.subscriptions:
            self.on_queues_changed(topic, {mq for mq in self.queues if mq.topic == topic})
        return balanced

    async def _pull_loop(self, pq: ProcessQueue) -> None:
        mq = pq.mq
        while not pq.dropped:
            if mq in self.paused or self._flow_controlled(pq):
                await asyncio.sleep(FLOW_CONTROL_DELAY_S)
                continue
            try:
                result = await pull(
                    self.instance, self.group, mq, pq.next_offset, self.pull_batch_size,
                    expression=self.subscriptions.get(mq.topic, "*"), sub_version=self.sub_version,
                    suspend_s=self.long_poll_s,
                )  # fmt: skip
            except OrbitError as exc:
                log.info("%s: pull %s failed: %s", self.group, mq, exc)
                await asyncio.sleep(PULL_ERROR_DELAY_S)
                continue
            if pq.dropped:
                return
            if result.status is PullStatus.FOUND:
                if pq.put(result.messages, result.next_begin_offset):
                    self._arrived.set()
            elif result.status is PullStatus.OFFSET_ILLEGAL:
                log.warning("%s: %s offset moved to %d", self.group, mq, result.next_begin_offset)
                pq.clear(result.next_begin_offset)
                self.consumed[mq] = result.next_begin_offset
            else:
                pq.skip_to(result.next_begin_offset)

    def _flow_controlled(self, pq: ProcessQueue) -> bool:
        total = sum(q.cached_count for q in self.queues.values())
        return pq.cached_count >= self.pull_threshold_for_queue or total >= self.pull_threshold_for_all

    # -- polling ----------------------------------------------------------------------------------------
    async def poll(self, timeout_s: float | None = None) -> list[MessageExt]:
        """The next batch (messages of one queue, in order), waiting up to ``timeout_s`` (default
        ``poll_timeout_s``) for one; an empty list when none came."""
        if not self._started:
            raise ClientError("start() before poll()")
        if self.auto_commit and time.monotonic() >= self._next_auto_commit:
            self._next_auto_commit = time.monotonic() + self.auto_commit_interval_s
            with contextlib.suppress(OrbitError):
                await self.commit()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.poll_timeout_s if timeout_s is None else timeout_s)
        while True:
            self._arrived.clear()
            batch = self._take()
            if batch:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _take(self) -> list[MessageExt]:
        ready = [pq for mq, pq in sorted(self.queues.items()) if pq.msgs and mq not in self.paused]
        if not ready:
            return []
        last = self._last_served
        pq = next((q for q in ready if last is None or q.mq > last), ready[0])  # round robin
        self._last_served = pq.mq
        batch = pq.take(self.pull_batch_size)
        self.consumed[pq.mq] = pq.commit_offset()
        return batch

    # -- positions --------------------------------------------------------------------------------------
    async def seek(self, mq: MessageQueue, offset: int) -> None:
        """Consume ``mq`` from ``offset`` on (it must be between the queue's min and max offsets)."""
        pq = self._owned(mq)
        lo, hi = (
            await self._offset(RequestCode.GET_MIN_OFFSET, mq),
            await self._offset(RequestCode.GET_MAX_OFFSET, mq),
        )
        if not lo <= offset <= hi:
            raise ClientError(f"seek offset {offset} of {mq} is outside [{lo}, {hi}]")
        if pq.pull_task is not None:
            pq.pull_task.cancel()  # a pull in flight reads from the old position: its answer is dropped
            with contextlib.suppress(asyncio.CancelledError):
                await pq.pull_task
        pq.clear(offset)
        self.consumed[mq] = offset
        pq.pull_task = asyncio.get_running_loop().create_task(self._pull_loop(pq), name=f"lite pull {mq}")

    async def seek_to_begin(self, mq: MessageQueue) -> None:
        await self.seek(mq, await self._offset(RequestCode.GET_MIN_OFFSET, mq))

    async def seek_to_end(self, mq: MessageQueue) -> None:
        await self.seek(mq, await self._offset(RequestCode.GET_MAX_OFFSET, mq))

    async def commit(self, offsets: dict[MessageQueue, int] | None = None) -> None:
        """Store consumed offsets (all assigned queues' by default, or the given ones) on the brokers (or
        the local file when BROADCASTING), now."""
        offsets = dict(self.consumed) if offsets is None else offsets
        for mq, offset in offsets.items():
            self._owned(mq)
            self.offset_store.update(mq, offset)
        await self.offset_store.persist_all(offsets)

    async def committed(self, mq: MessageQueue) -> int | None:
        """The offset stored for ``mq`` (None when nothing was ever committed)."""
        return await self.offset_store.fetch(mq)

    async def persist_offsets(self) -> None:
        if self.auto_commit:
            await self.commit()

    def _owned(self, mq: MessageQueue) -> ProcessQueue:
        pq = self.queues.get(mq)
        if pq is None:
            raise ClientError(f"{mq} is not assigned to this consumer")
        return pq

    async def _offset(self, code: int, mq: MessageQueue) -> int:
        resp = await self.instance.request(
            self.instance.broker_addr(mq.broker_name), code, {"topic": mq.topic, "queueId": mq.queue_id}
        )
        return int(resp.ext_fields["offset"])
