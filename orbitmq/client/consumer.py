"""PushConsumer (clustering, concurrent listener): heartbeat, rebalance, long-poll pull loop per queue,
send-back of failed messages through %RETRY%<group>, offsets committed only past finished messages.

Java timings: heartbeat right after start and every 30 s, rebalance every 20 s and at once on
NOTIFY_CONSUMER_IDS_CHANGED (code 40), offsets persisted every 5 s and on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from orbitmq.client.allocate import AllocateStrategy, averagely
from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import (
    RETRY_PREFIX,
    ConsumeFromWhere,
    MessageExt,
    MessageModel,
    MessageQueue,
    message_ext_from_record,
)
from orbitmq.core.errors import BrokerError, ClientError, OrbitError
from orbitmq.net import Connection
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import decode_records, java_string_hash

__all__ = ["Listener", "ProcessQueue", "PushConsumer"]

log = logging.getLogger("orbitmq.client")

#: ``(message) -> True/None`` = consumed; False or an exception = consume again later (send back).
Listener = Callable[[MessageExt], Awaitable[bool | None] | bool | None]


@dataclass
class ProcessQueue:
    """What one owned queue has in flight; the committable offset never passes an unfinished message."""

    mq: MessageQueue
    next_offset: int
    in_flight: set[int] = field(default_factory=set)
    done_upto: int = 0  # highest offset handed out + 1
    dropped: bool = False
    task: asyncio.Task[None] | None = None

    def commit_offset(self) -> int:
        return min(self.in_flight) if self.in_flight else max(self.done_upto, 0)


class PushConsumer:
    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        *,
        message_model: MessageModel = MessageModel.CLUSTERING,
        consume_from_where: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        allocate: AllocateStrategy = averagely,
        consume_concurrency: int = 20,
        max_reconsume_times: int = 16,
        pull_batch_size: int = 32,
        pull_threshold_for_queue: int = 1000,
        long_poll_s: float = 15.0,
        rebalance_interval_s: float = 20.0,
        heartbeat_interval_s: float = 30.0,
        persist_interval_s: float = 5.0,
        instance_name: str | None = None,
    ) -> None:
        if message_model is not MessageModel.CLUSTERING:
            raise ClientError("only CLUSTERING is implemented by this PushConsumer")
        self.group = group
        self.instance = ClientInstance(namesrv_addrs, instance_name=instance_name)
        self.consume_from_where, self.allocate = consume_from_where, allocate
        self.max_reconsume_times, self.pull_batch_size = max_reconsume_times, pull_batch_size
        self.pull_threshold_for_queue, self.long_poll_s = pull_threshold_for_queue, long_poll_s
        self.rebalance_interval_s, self.heartbeat_interval_s = rebalance_interval_s, heartbeat_interval_s
        self.persist_interval_s = persist_interval_s
        self.subscriptions: dict[str, str] = {}
        self._sub_version = int(time.time() * 1000)
        self._listener: Listener | None = None
        self._sem = asyncio.Semaphore(consume_concurrency)
        self.process_queues: dict[MessageQueue, ProcessQueue] = {}
        self._rebalance_now = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._consume_tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.instance.dispatch.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_ids_changed)

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    def subscribe(self, topic: str, expression: str = "*") -> None:
        self.subscriptions[topic] = expression

    def register_listener(self, listener: Listener) -> None:
        self._listener = listener

    def assigned_queues(self) -> set[MessageQueue]:
        return {mq for mq, pq in self.process_queues.items() if not pq.dropped}

    # -- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._listener is None or not self.subscriptions:
            raise ClientError("subscribe() and register_listener() before start()")
        self.subscriptions.setdefault(RETRY_PREFIX + self.group, "*")  # clustering retries come back here
        for topic in self.subscriptions:
            with contextlib.suppress(BrokerError):
                await self.instance.route(topic)
        await self._heartbeat()
        for topic in self.subscriptions:  # the retry topic exists once the broker saw the heartbeat
            with contextlib.suppress(BrokerError):
                await self.instance.route(topic, refresh=True)
        await self.rebalance()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._rebalance_loop(), name=f"rebalance {self.group}"),
            loop.create_task(self._every(self.heartbeat_interval_s, self._heartbeat_and_routes)),
            loop.create_task(self._every(self.persist_interval_s, self.persist_offsets)),
        ]

    async def shutdown(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for pq in self.process_queues.values():
            pq.dropped = True
            if pq.task is not None:
                pq.task.cancel()
        await asyncio.gather(
            *self._tasks, *(pq.task for pq in self.process_queues.values() if pq.task), return_exceptions=True
        )
        if self._consume_tasks:
            await asyncio.wait(set(self._consume_tasks), timeout=10)
        await self.persist_offsets()
        for addr in self.instance.all_broker_addrs():
            with contextlib.suppress(OrbitError):
                await self.instance.request(
                    addr,
                    RequestCode.UNREGISTER_CLIENT,
                    {"clientID": self.client_id, "consumerGroup": self.group},
                )
        await self.instance.close()

    async def _every(self, interval_s: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await action()
            except OrbitError as exc:
                log.info("%s: periodic %s failed: %s", self.group, getattr(action, "__name__", action), exc)

    # -- heartbeat and rebalance ------------------------------------------------------------------------
    async def _heartbeat_and_routes(self) -> None:
        await self.instance.refresh_routes()
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        subs = [
            {"topic": t, "subString": e, "tagsSet": _tags(e), "codeSet": [java_string_hash(x) for x in _tags(e)],
             "subVersion": self._sub_version, "classFilterMode": False, "expressionType": "TAG"}
            for t, e in self.subscriptions.items()
        ]  # fmt: skip
        consumer = {"groupName": self.group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
                    "consumeFromWhere": self.consume_from_where.value, "subscriptionDataSet": subs, "unitMode": False}  # fmt: skip
        await self.instance.heartbeat({"consumerDataSet": [consumer], "producerDataSet": []})

    async def _on_ids_changed(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        self._rebalance_now.set()
        return None

    async def _rebalance_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rebalance_now.wait(), self.rebalance_interval_s)
            self._rebalance_now.clear()
            try:
                await self.rebalance()
            except OrbitError as exc:
                log.info("%s: rebalance failed: %s", self.group, exc)

    async def rebalance(self) -> None:
        for topic in list(self.subscriptions):
            try:
                await self.rebalance_by_topic(topic)
            except (BrokerError, ClientError) as exc:
                log.info("%s: rebalance of %s skipped: %s", self.group, topic, exc)

    async def rebalance_by_topic(self, topic: str) -> None:
        route = self.instance.routes.get(topic) or await self.instance.route(topic)
        all_queues = sorted(route.subscribe_queues)
        if not all_queues:
            return
        addr = route.master_addrs()[0]
        resp = await self.instance.request(
            addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": self.group}
        )
        cids = sorted(orjson.loads(resp.body_bytes()).get("consumerIdList") or [])
        mine = set(self.allocate(self.group, self.client_id, all_queues, cids))
        for mq, pq in list(self.process_queues.items()):
            if mq.topic == topic and mq not in mine:
                await self._drop(pq)
        for mq in sorted(mine - set(self.process_queues)):
            offset = await self._start_offset(mq, route.master_addr(mq.broker_name) or addr)
            pq = ProcessQueue(mq, offset, done_upto=offset)
            self.process_queues[mq] = pq
            pq.task = asyncio.get_running_loop().create_task(self._pull_loop(pq), name=f"pull {mq}")

    async def _drop(self, pq: ProcessQueue) -> None:
        pq.dropped = True
        if pq.task is not None:
            pq.task.cancel()
        del self.process_queues[pq.mq]
        with contextlib.suppress(OrbitError):
            await self._commit(pq)

    async def _start_offset(self, mq: MessageQueue, addr: str) -> int:
        """RocketMQ's computePullFromWhere: the stored offset if any, else per consume_from_where."""
        q = {"consumerGroup": self.group, "topic": mq.topic, "queueId": mq.queue_id}
        resp = await self.instance.request(
            addr, RequestCode.QUERY_CONSUMER_OFFSET, q, ok=(0, ResponseCode.QUERY_NOT_FOUND)
        )
        if resp.code == 0 and (stored := int(resp.ext_fields.get("offset", -1))) >= 0:
            return stored
        if (
            mq.topic.startswith(RETRY_PREFIX)
            or self.consume_from_where is ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
        ):
            return 0
        code = RequestCode.GET_MAX_OFFSET
        fields: dict[str, object] = {"topic": mq.topic, "queueId": mq.queue_id}
        if self.consume_from_where is ConsumeFromWhere.CONSUME_FROM_TIMESTAMP:
            code, fields["timestamp"] = (
                RequestCode.SEARCH_OFFSET_BY_TIMESTAMP,
                int(time.time() * 1000) - 1_800_000,
            )
        return int((await self.instance.request(addr, code, fields)).ext_fields["offset"])

    # -- pulling and consuming --------------------------------------------------------------------------
    async def _pull_loop(self, pq: ProcessQueue) -> None:
        mq = pq.mq
        while not pq.dropped:
            if len(pq.in_flight) >= self.pull_threshold_for_queue:
                await asyncio.sleep(0.05)  # flow control (Java: 50 ms)
                continue
            commit = pq.commit_offset()
            fields = {"consumerGroup": self.group, "topic": mq.topic, "queueId": mq.queue_id,
                      "queueOffset": pq.next_offset, "maxMsgNums": self.pull_batch_size,
                      "sysFlag": 2 | 4 | (1 if commit > 0 else 0), "commitOffset": commit,
                      "suspendTimeoutMillis": int(self.long_poll_s * 1000),
                      "subscription": self.subscriptions.get(mq.topic, "*"), "subVersion": self._sub_version}  # fmt: skip
            try:
                addr = self.instance.broker_addr(mq.broker_name)
                resp = await self.instance.request(
                    addr, RequestCode.PULL_MESSAGE, fields, timeout_s=self.long_poll_s + 5, ok=(0, 19, 20, 21)
                )
            except OrbitError as exc:
                log.info("%s: pull %s failed: %s", self.group, mq, exc)
                await asyncio.sleep(1.0)
                continue
            nxt = int(resp.ext_fields.get("nextBeginOffset", pq.next_offset))
            if resp.code == 0:
                self._dispatch(
                    pq,
                    [message_ext_from_record(r, mq.broker_name) for r in decode_records(resp.body_bytes())],
                )
            elif resp.code == ResponseCode.PULL_OFFSET_MOVED and not pq.in_flight:
                pq.done_upto = nxt  # Java: persist the corrected offset; the next commit carries it
            pq.next_offset = nxt
            if not pq.in_flight and pq.done_upto < nxt and resp.code != 0:
                pq.done_upto = nxt

    def _dispatch(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        expr = self.subscriptions.get(pq.mq.topic, "*")
        wanted = _tags(expr)
        for m in msgs:
            pq.done_upto = max(pq.done_upto, m.queue_offset + 1)
            if wanted and (m.tags not in wanted):
                continue  # filtered out client-side: counts as consumed
            pq.in_flight.add(m.queue_offset)
            task = asyncio.get_running_loop().create_task(self._consume(pq, m))
            self._consume_tasks.add(task)
            task.add_done_callback(self._consume_tasks.discard)

    async def _consume(self, pq: ProcessQueue, msg: MessageExt) -> None:
        assert self._listener is not None
        async with self._sem:
            try:
                result = self._listener(msg)
                if inspect.isawaitable(result):
                    result = await result
                ok = result is None or bool(result)
            except Exception:
                log.exception("%s: listener failed on %s", self.group, msg.msg_id)
                ok = False
            if not ok:
                ok = await self._send_back(msg)
            if ok:
                pq.in_flight.discard(msg.queue_offset)
            else:  # send-back failed: try this message again locally in a while
                await asyncio.sleep(1.0)
                msg.reconsume_times += 1
                task = asyncio.get_running_loop().create_task(self._consume(pq, msg))
                self._consume_tasks.add(task)
                task.add_done_callback(self._consume_tasks.discard)

    async def _send_back(self, msg: MessageExt) -> bool:
        fields = {"offset": msg.commit_log_offset, "group": self.group, "delayLevel": 0,
                  "originMsgId": msg.msg_id, "originTopic": msg.topic, "unitMode": False,
                  "maxReconsumeTimes": self.max_reconsume_times}  # fmt: skip
        try:
            await self.instance.request(
                self.instance.broker_addr(msg.broker_name), RequestCode.CONSUMER_SEND_MSG_BACK, fields
            )
            return True
        except OrbitError as exc:
            log.info("%s: send back of %s failed: %s", self.group, msg.msg_id, exc)
            return False

    # -- offsets ----------------------------------------------------------------------------------------
    async def persist_offsets(self) -> None:
        for pq in list(self.process_queues.values()):
            with contextlib.suppress(OrbitError):
                await self._commit(pq)

    async def _commit(self, pq: ProcessQueue) -> None:
        mq = pq.mq
        fields = {
            "consumerGroup": self.group,
            "topic": mq.topic,
            "queueId": mq.queue_id,
            "commitOffset": pq.commit_offset(),
        }
        await self.instance.request(
            self.instance.broker_addr(mq.broker_name), RequestCode.UPDATE_CONSUMER_OFFSET, fields
        )


def _tags(expression: str) -> list[str]:
    expr = expression.strip()
    if not expr or expr == "*":
        return []
    return [t.strip() for t in expr.split("||") if t.strip()]
