"""Orderly consumption for the PushConsumer (RocketMQ's ``ConsumeMessageOrderlyService``).

With CLUSTERING a member consumes a queue only while it holds the queue's lock on the broker
(LOCK_BATCH_MQ, 41): new queues are locked before they are pulled, every held lock is renewed every
``lock_interval_s`` (20 s; the broker lets a lock lapse after 60 s without renewal), and a member stops
consuming a queue whose lock it has not renewed for 30 s. A queue given away in a rebalance is released
only after the message in the listener is finished and the offset past it is committed to the broker;
then it is unlocked (UNLOCK_BATCH_MQ, 42), so the next owner, which cannot lock it before that, starts
exactly where this member stopped. That is what keeps per-queue order across rebalances.

Within a queue the listener sees one message at a time, in queue order. A failed attempt suspends the
queue for ``ConsumeOrderlyContext.suspend_current_queue_time_ms`` and hands the same message again; after
``max_reconsume_times`` failed attempts (unlimited by default) the message is dead-lettered
(CONSUMER_SEND_MSG_BACK with delay level -1) and the queue moves on. BROADCASTING needs no locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson

from orbitmq.client.listener import ConsumeOrderlyContext, OrderlyListener, call_listener
from orbitmq.client.model import MessageExt, MessageQueue
from orbitmq.client.periodic import Periodic
from orbitmq.client.process_queue import ProcessQueue
from orbitmq.core.errors import OrbitError
from orbitmq.protocol.codes import RequestCode

if TYPE_CHECKING:
    from orbitmq.client.consumer import PushConsumer

__all__ = ["LOCK_MAX_LIVE_S", "OrderlyConsumption"]

log = logging.getLogger("orbitmq.client")

#: A queue whose lock was last renewed longer ago than this is not consumed (Java
#: ``rocketmq.client.rebalance.lockMaxLiveTime``, 30 s; the broker keeps a lock 60 s).
LOCK_MAX_LIVE_S = 30.0
#: After a failed attempt to (re)lock a queue, the next attempt waits this long.
LOCK_RETRY_DELAY_S = 1.0


class OrderlyConsumption:
    def __init__(self, consumer: PushConsumer, listener: OrderlyListener) -> None:
        self.consumer, self.listener = consumer, listener
        self.lock_service = Periodic(f"lock {consumer.group}", consumer.lock_interval_s, self.lock_all)
        #: Plain counters for metrics and tests.
        self.suspended = 0
        self.dead_lettered = 0

    async def start(self) -> None:
        await self.lock_service.start()

    async def stop(self) -> None:
        await self.lock_service.stop()

    # -- broker locks -----------------------------------------------------------------------------------
    def _body(self, mqs: Iterable[MessageQueue]) -> bytes:
        return orjson.dumps({"consumerGroup": self.consumer.group, "clientId": self.consumer.client_id,
                             "onlyThisBroker": False, "mqSet": [mq.to_json() for mq in mqs]})  # fmt: skip

    async def lock(self, mqs: Iterable[MessageQueue]) -> set[MessageQueue]:
        """LOCK_BATCH_MQ on each queue's broker; the queues now locked by this member."""
        locked: set[MessageQueue] = set()
        for broker, group in _by_broker(mqs).items():
            try:
                resp = await self.consumer.instance.request(
                    self.consumer.instance.broker_addr(broker),
                    RequestCode.LOCK_BATCH_MQ,
                    {},
                    self._body(group),
                )
                rows = orjson.loads(resp.body_bytes()).get("lockOKMQSet") or []
                locked |= {MessageQueue.from_json(r) for r in rows} & set(group)
            except (OrbitError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.info("%s: locking queues on %s failed: %s", self.consumer.group, broker, exc)
        return locked

    async def unlock(self, mqs: Iterable[MessageQueue]) -> None:
        for broker, group in _by_broker(mqs).items():
            try:
                await self.consumer.instance.request(
                    self.consumer.instance.broker_addr(broker),
                    RequestCode.UNLOCK_BATCH_MQ,
                    {},
                    self._body(group),
                )
            except OrbitError as exc:
                log.info("%s: unlocking queues on %s failed: %s", self.consumer.group, broker, exc)

    async def lock_all(self) -> None:
        """Renew the locks of every owned queue; a queue the broker refuses stops being consumed."""
        pqs = [pq for pq in self.consumer.process_queues.values() if not pq.dropped]
        if not pqs:
            return
        locked = await self.lock(pq.mq for pq in pqs)
        now = time.monotonic()
        for pq in pqs:
            pq.locked = pq.mq in locked
            if pq.locked:
                pq.last_lock_s = now

    async def _relock(self, pq: ProcessQueue) -> None:
        if pq.mq in await self.lock([pq.mq]):
            pq.locked, pq.last_lock_s = True, time.monotonic()
        else:
            pq.locked = False
            await asyncio.sleep(LOCK_RETRY_DELAY_S)

    # -- consuming --------------------------------------------------------------------------------------
    async def consume_loop(self, pq: ProcessQueue) -> None:
        c = self.consumer
        while not pq.dropped:
            msg = pq.first()
            if msg is None:
                pq.changed.clear()
                if pq.first() is None and not pq.dropped:
                    await pq.changed.wait()
                continue
            if c.clustering and (not pq.locked or pq.lock_expired(time.monotonic(), LOCK_MAX_LIVE_S)):
                await self._relock(pq)
                continue
            suspend_ms = await self._consume_one(pq, msg)
            if suspend_ms is not None:
                self.suspended += 1
                await asyncio.sleep(suspend_ms / 1000)

    async def _consume_one(self, pq: ProcessQueue, msg: MessageExt) -> int | None:
        """One attempt at the queue's first message; how long to suspend the queue, or None when done."""
        c = self.consumer
        assert c._sem is not None
        ctx = ConsumeOrderlyContext(pq.mq, c.suspend_current_queue_time_ms)
        async with c._sem, pq.consume_lock:
            if pq.dropped:
                return None  # given away while waiting for a slot: the next owner starts at this message
            ok = await call_listener(c.group, self.listener, msg, ctx)
            if ok:
                c.consumed += 1
            elif msg.reconsume_times >= c.effective_max_reconsume_times():
                ok = await self._give_up(msg)
            if ok:  # committed while holding the consume lock, so a release persists past this message
                c.offset_store.update(pq.mq, pq.remove(msg.queue_offset), increase_only=True)
                return None
            msg.reconsume_times += 1
            return max(0, ctx.suspend_current_queue_time_ms)

    async def _give_up(self, msg: MessageExt) -> bool:
        c = self.consumer
        if not c.clustering:
            log.warning(
                "%s: BROADCASTING, the message %s failed too often and is dropped", c.group, msg.msg_id
            )
            return True
        if await c.send_back(msg, delay_level=-1):
            self.dead_lettered += 1
            return True
        return False


def _by_broker(mqs: Iterable[MessageQueue]) -> dict[str, list[MessageQueue]]:
    out: dict[str, list[MessageQueue]] = defaultdict(list)
    for mq in mqs:
        out[mq.broker_name].append(mq)
    return dict(out)
