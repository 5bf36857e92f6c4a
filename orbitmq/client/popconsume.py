"""The POP side of a push consumer: pop the queues the broker assigned, hand messages to the listener,
ack them, and keep slow ones invisible (docs/pop-rebalance.md).

The wire calls are :mod:`orbitmq.client.pop`'s. One :class:`PopProcessQueue` per assigned queue (queue id
-1: every queue of that broker) runs a pop loop:
POP_MESSAGE with long polling, at most ``pop_threshold_for_queue`` messages in flight. Each message is
handled by the consumer's concurrent listener under the consumer's concurrency limit. Success: ACK_MESSAGE.
A handler still running when ``invisible_time_ms - renew margin`` has passed gets its invisibility
extended (CHANGE_MESSAGE_INVISIBLETIME, new handle kept), so a slow handler is not redelivered elsewhere
meanwhile. Failure: CHANGE_MESSAGE_INVISIBLETIME to the next back-off step (upstream's ``popDelayLevel``
10 s .. 2 h); after ``max_reconsume_times`` the message is sent to the group's DLQ and acked (upstream's
remoting client drops such messages instead: we keep them).

Taking a queue away stops new pops; a pop already waiting on the broker is allowed to finish and its
messages are handled and acked like any other (they were popped for us; dropping them would only delay
them by an invisible time). Messages that are never acked (consumer gone) come back through the broker's
revive as POP retry messages: nothing is lost, at worst delivered again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Final, Protocol

from orbitmq.client.instance import ClientInstance
from orbitmq.client.listener import Listener, call_listener
from orbitmq.client.model import ConsumeFromWhere, MessageExt, MessageQueue, message_ext_from_record
from orbitmq.client.modes import TopicMode
from orbitmq.client.pop import Invoke, PopStatus, ack_message, change_invisible_time, pop_message
from orbitmq.core.errors import OrbitError
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import (
    INIT_MODE_MAX,
    INIT_MODE_MIN,
    MAX_POP_NUMS,
    ExtraInfo,
    PopMessageRequestHeader,
)
from orbitmq.protocol.record import Prop

__all__ = ["POP_DELAY_LEVELS_S", "PopConsumption", "PopCounters", "PopHost", "PopProcessQueue"]

log = logging.getLogger("orbitmq.client.pop")

#: Upstream's ``popDelayLevel``: how long a failed message stays invisible, by reconsume count.
POP_DELAY_LEVELS_S: Final = (10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200)
_FLOW_CONTROL_S: Final = 0.05
_ERROR_DELAY_S: Final = 1.0


class PopHost(Protocol):
    """What the POP side needs of its push consumer."""

    group: str
    instance: ClientInstance
    subscriptions: dict[str, str]
    consume_from_where: ConsumeFromWhere
    _listener: Listener | None
    _sem: asyncio.Semaphore | None

    def effective_max_reconsume_times(self) -> int: ...

    async def send_back(self, msg: MessageExt, delay_level: int) -> bool: ...


@dataclass
class PopCounters:
    pops: int = 0
    popped: int = 0
    consumed: int = 0
    acks: int = 0
    ack_failures: int = 0
    extended: int = 0  # invisibility renewed for a slow handler
    retried: int = 0  # failed, made visible again later
    dead_lettered: int = 0


@dataclass(eq=False)
class PopProcessQueue:
    mq: MessageQueue  # queue_id -1: every queue of the broker
    invisible_time_ms: int
    in_flight: int = 0
    dropped: bool = False
    task: asyncio.Task[None] | None = None
    last_pop_s: float = field(default_factory=time.monotonic)  # now: a fresh queue is not idle (#7570)


class PopConsumption:
    def __init__(
        self,
        host: PopHost,
        *,
        invisible_time_ms: int = 60_000,
        poll_time_ms: int = 15_000,
        batch_size: int = 32,
        pop_threshold_for_queue: int = 96,
        renew_margin_ms: int | None = None,
        delay_levels_s: tuple[float, ...] = POP_DELAY_LEVELS_S,
    ) -> None:
        self.host = host
        self.invisible_time_ms = invisible_time_ms
        self.poll_time_ms = poll_time_ms
        self.batch_size = max(1, min(batch_size, MAX_POP_NUMS))
        self.pop_threshold_for_queue = pop_threshold_for_queue
        # Renew well before the broker would revive: a third of the invisible time, at most 5 s early.
        self.renew_margin_ms = (
            renew_margin_ms if renew_margin_ms is not None else min(invisible_time_ms // 3, 5000)
        )
        self.delay_levels_s = delay_levels_s
        self.queues: dict[MessageQueue, PopProcessQueue] = {}
        self.counters = PopCounters()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- assignment ---------------------------------------------------------------------------------------
    def assigned(self, topic: str | None = None) -> set[MessageQueue]:
        return {
            mq for mq, pq in self.queues.items() if not pq.dropped and (topic is None or mq.topic == topic)
        }

    async def assign(self, topic: str, queues: set[MessageQueue], mode: TopicMode) -> None:
        """Pop exactly ``queues`` of ``topic`` from now on."""
        for mq, pq in list(self.queues.items()):
            if mq.topic == topic and mq not in queues:
                self._drop(pq)
        for mq in sorted(queues - set(self.queues)):
            pq = PopProcessQueue(mq, self.invisible_time_ms)
            self.queues[mq] = pq
            pq.task = asyncio.get_running_loop().create_task(self._pop_loop(pq), name=f"pop {mq}")

    def _drop(self, pq: PopProcessQueue) -> None:
        pq.dropped = True  # its loop ends after the pop in progress (whose messages are still handled)
        del self.queues[pq.mq]

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop popping; wait (bounded) for handlers in progress, which ack what they finish."""
        loops = [pq.task for pq in self.queues.values() if pq.task is not None]
        for pq in list(self.queues.values()):
            self._drop(pq)
        for t in loops:
            t.cancel()  # a pop still held by the broker: its messages come back after their invisible time
        await asyncio.gather(*loops, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    # -- popping ------------------------------------------------------------------------------------------
    async def _pop_loop(self, pq: PopProcessQueue) -> None:
        mq = pq.mq
        while not pq.dropped:
            room = self.pop_threshold_for_queue - pq.in_flight
            if room <= 0:
                await asyncio.sleep(_FLOW_CONTROL_S)
                continue
            try:
                found = await self._pop_once(pq, min(room, self.batch_size))
            except OrbitError as exc:
                log.info("%s: pop %s failed: %s", self.host.group, mq, exc)
                await asyncio.sleep(_ERROR_DELAY_S)
                continue
            pq.last_pop_s = time.monotonic()
            if not found and pq.dropped:
                return

    async def _pop_once(self, pq: PopProcessQueue, max_nums: int) -> bool:
        mq, host = pq.mq, self.host
        expression = host.subscriptions.get(mq.topic, "*")
        init = (
            INIT_MODE_MIN
            if host.consume_from_where is ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
            else INIT_MODE_MAX
        )
        header = PopMessageRequestHeader(
            consumer_group=host.group, topic=mq.topic, queue_id=mq.queue_id, max_msg_nums=max_nums,
            invisible_time=pq.invisible_time_ms, poll_time=self.poll_time_ms, born_time=int(time.time() * 1000),
            init_mode=init, exp_type="TAG", exp=expression,
        )  # fmt: skip
        self.counters.pops += 1
        result = await pop_message(
            self._invoke(mq.broker_name), mq.broker_name, header, self.poll_time_ms / 1000 + 5
        )
        if result.status is PopStatus.POLLING_FULL:
            await asyncio.sleep(_ERROR_DELAY_S)
            return False
        if result.status is not PopStatus.FOUND:
            return False
        self.counters.popped += len(result.messages)
        for popped in result.messages:
            msg = message_ext_from_record(popped.record, mq.broker_name)
            msg.topic = mq.topic  # a retry message is handed over under the topic it was sent to
            msg.reconsume_times = popped.reconsume_times
            msg.properties.setdefault(Prop.POP_CK, popped.extra_info.encode())
            pq.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._consume(pq, msg, popped.extra_info))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    def _invoke(self, broker_name: str) -> Invoke:
        """Requests to ``broker_name``'s master (looked up at each call: its address may change)."""
        instance = self.host.instance

        async def invoke(cmd: RemotingCommand, timeout_s: float) -> RemotingCommand:
            return await instance.remoting.invoke(instance.broker_addr(broker_name), cmd, timeout_s)

        return invoke

    # -- consuming ----------------------------------------------------------------------------------------
    async def _consume(self, pq: PopProcessQueue, msg: MessageExt, handle: ExtraInfo) -> None:
        host = self.host
        assert host._listener is not None and host._sem is not None
        try:
            async with host._sem:
                work = asyncio.ensure_future(call_listener(host.group, host._listener, msg))
                while True:
                    wait_s = max(0.05, (handle.revive_time - self.renew_margin_ms) / 1000 - time.time())
                    done, _ = await asyncio.wait({work}, timeout=wait_s)
                    if done:
                        break
                    handle = await self._change_invisible(msg, handle, pq.invisible_time_ms, renew=True)
                ok = work.result()
            if ok:
                self.counters.consumed += 1
                await self._ack(msg, handle)
            elif msg.reconsume_times >= host.effective_max_reconsume_times():
                if await host.send_back(msg, -1):  # to %DLQ%<group>, then the pop is settled
                    self.counters.dead_lettered += 1
                    await self._ack(msg, handle)
            else:
                level = min(msg.reconsume_times, len(self.delay_levels_s) - 1)
                await self._change_invisible(msg, handle, int(self.delay_levels_s[level] * 1000))
                self.counters.retried += 1
        finally:
            pq.in_flight -= 1

    async def _ack(self, msg: MessageExt, handle: ExtraInfo) -> None:
        timeout = self.host.instance.request_timeout_s
        try:
            await ack_message(self._invoke(handle.broker_name), self.host.group, msg.topic, handle, timeout)
            self.counters.acks += 1
        except (
            OrbitError
        ) as exc:  # the broker redelivers it after its invisible time: a duplicate, not a loss
            self.counters.ack_failures += 1
            log.info("%s: ack of %s failed: %s", self.host.group, msg.msg_id, exc)

    async def _change_invisible(
        self, msg: MessageExt, handle: ExtraInfo, invisible_ms: int, *, renew: bool = False
    ) -> ExtraInfo:
        """CHANGE_MESSAGE_INVISIBLETIME; the new handle (the old one when it failed: the message may then be
        redelivered, which at-least-once allows)."""
        invoke, timeout = self._invoke(handle.broker_name), self.host.instance.request_timeout_s
        try:
            new = await change_invisible_time(
                invoke, self.host.group, msg.topic, handle, invisible_ms, timeout
            )
        except OrbitError as exc:
            log.info("%s: invisible time of %s not changed: %s", self.host.group, msg.msg_id, exc)
            if renew:  # do not spin: try again half a margin later
                await asyncio.sleep(self.renew_margin_ms / 1000 / 2)
            return handle
        if renew:
            self.counters.extended += 1
        return new
