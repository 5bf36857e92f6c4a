"""The producer: SEND_MESSAGE_V2 (310) / SEND_BATCH_MESSAGE (320) straight to the brokers, Java-style.

UNIQ_KEY is set client-side (``SendResult.msg_id``), bodies above ``compress_over`` bytes are zlib
compressed with sysFlag bit 0, and a retriable failure is retried on another broker within the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import Message, MessageQueue, SendResult, SendStatus
from orbitmq.client.routing import MessageQueueSelector, QueueSelector, TopicRoute, select_by_hash
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.core.service import Service
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.record import Prop, SysFlag, UniqueIdGenerator, encode_batch_body, encode_properties

__all__ = ["Producer"]

log = logging.getLogger("orbitmq.client")

DEFAULT_TOPIC = "TBW102"
STORED_CODES = (0, 10, 11, 12)


class _RouteRefresh(Service):
    """Refreshes every known route every ``interval_s`` (the Java client's 30 s timer)."""

    def __init__(self, instance: ClientInstance, interval_s: float) -> None:
        super().__init__("producer route refresh")
        self.instance, self.interval_s = instance, interval_s

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(self.interval_s)
            if not self.stopping:
                await self.instance.refresh_routes()


class Producer:
    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        *,
        send_timeout_s: float = 3.0,
        retries: int = 2,
        compress_over: int = 4096,
        default_topic_queue_nums: int = 4,
        route_refresh_s: float = 30.0,
        instance: ClientInstance | None = None,
    ) -> None:
        self.group = group
        self.instance = instance or ClientInstance(namesrv_addrs, request_timeout_s=send_timeout_s)
        self._owns_instance = instance is None
        self.send_timeout_s, self.retries, self.compress_over = send_timeout_s, retries, compress_over
        self.default_topic_queue_nums = default_topic_queue_nums
        self._ids = UniqueIdGenerator(self.instance.client_ip)
        self._selector = QueueSelector()
        self._refresh = _RouteRefresh(self.instance, route_refresh_s)
        self._pending: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        await self._refresh.start()
        await self._heartbeat()

    async def shutdown(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending))
        await self._refresh.stop()
        for addr in self.instance.all_broker_addrs():
            try:
                await self.instance.request(
                    addr,
                    RequestCode.UNREGISTER_CLIENT,
                    {"clientID": self.instance.client_id, "producerGroup": self.group},
                )
            except (BrokerError, ClientError) as exc:
                log.info("unregister from %s failed: %s", addr, exc)
        if self._owns_instance:
            await self.instance.close()

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def _heartbeat(self) -> None:
        await self.instance.heartbeat({"producerDataSet": [{"groupName": self.group}], "consumerDataSet": []})

    # -- routes -----------------------------------------------------------------------------------------
    async def route(self, topic: str) -> TopicRoute:
        """The topic's route; an unknown topic uses TBW102's brokers, which auto-create it (Java behaviour).
        Learning a new broker triggers a heartbeat, so the broker knows this producer's group."""
        brokers_before = set(self.instance.all_broker_addrs())
        try:
            route = await self.instance.route(topic)
        except BrokerError as exc:
            if exc.code != ResponseCode.TOPIC_NOT_EXIST:
                raise
            default = await self.instance.route(DEFAULT_TOPIC)
            queues = default.publish_queues[: self.default_topic_queue_nums]
            route = TopicRoute(
                topic,
                tuple(MessageQueue(topic, q.broker_name, q.queue_id) for q in queues),
                (),
                default.broker_addrs,
                default.cluster_by_broker,
            )
        if set(self.instance.all_broker_addrs()) - brokers_before:
            await self._heartbeat()
        return route

    # -- sending ----------------------------------------------------------------------------------------
    async def send(self, msg: Message, *, queue: MessageQueue | None = None) -> SendResult:
        """Send and wait for the broker; retried on another broker for retriable failures."""
        props = self._prepare(msg)
        return await self._send_with_retry(
            msg.topic, lambda mq, addr: self._send_one(mq, addr, msg, props), queue
        )

    async def send_orderly(
        self, msg: Message, key: Any, selector: MessageQueueSelector = select_by_hash
    ) -> SendResult:
        """Send to the queue ``selector`` picks for ``key`` (default: by hash), without retrying elsewhere."""
        route = await self.route(msg.topic)
        if not route.publish_queues:
            raise ClientError(f"topic {msg.topic!r} has no writable queue")
        mq = selector(route.publish_queues, msg, key)
        return await self._send_one(mq, self._addr(route, mq), msg, self._prepare(msg))

    def send_async(
        self, msg: Message, callback: Callable[[SendResult | BaseException], None] | None = None
    ) -> asyncio.Future[SendResult]:
        """Start a send; the returned future (and ``callback``, if given) gets the result or the error."""
        task = asyncio.get_running_loop().create_task(self.send(msg))
        self._pending.add(task)

        def done(t: asyncio.Task[SendResult]) -> None:
            self._pending.discard(t)
            if callback is not None and not t.cancelled():
                exc = t.exception()
                callback(exc if exc is not None else t.result())

        task.add_done_callback(done)
        return task

    async def send_oneway(self, msg: Message) -> None:
        """Fire and forget: no response is awaited, no retry."""
        route = await self.route(msg.topic)
        mq = self._selector.select(route)
        props = self._prepare(msg)
        body, sys_flag = self._body(msg.body)
        await self.instance.oneway(
            self._addr(route, mq),
            RequestCode.SEND_MESSAGE_V2,
            self._header(mq, props, sys_flag, msg.flag),
            body,
        )

    async def send_batch(self, msgs: Sequence[Message]) -> SendResult:
        """One SEND_BATCH_MESSAGE: all messages to one queue of one topic, consecutive offsets."""
        if not msgs or len({m.topic for m in msgs}) != 1:
            raise ClientError("a batch needs at least one message, all of the same topic")
        if any(m.delay_level for m in msgs):
            raise ClientError("delayed messages cannot be batched")
        props_list = [self._prepare(m) for m in msgs]
        body = encode_batch_body([(m.flag, m.body, p) for m, p in zip(msgs, props_list, strict=True)])
        uniq = ",".join(p[Prop.UNIQ_KEY] for p in props_list)

        async def attempt(mq: MessageQueue, addr: str) -> SendResult:
            fields = self._header(mq, {}, 0, 0) | {"m": True}
            resp = await self.instance.request(
                addr, RequestCode.SEND_BATCH_MESSAGE, fields, body, ok=STORED_CODES
            )
            return _result(resp.code, uniq, resp.ext_fields, mq)

        return await self._send_with_retry(msgs[0].topic, attempt, None)

    # -- internals --------------------------------------------------------------------------------------
    def _prepare(self, msg: Message) -> dict[str, str]:
        props = msg.wire_properties()
        props.setdefault(Prop.UNIQ_KEY, self._ids.next_id())
        props.setdefault(Prop.WAIT, "true")
        return props

    def _body(self, body: bytes) -> tuple[bytes, int]:
        if len(body) > self.compress_over:
            return zlib.compress(body, 5), int(SysFlag.COMPRESSED)
        return body, 0

    def _header(self, mq: MessageQueue, props: dict[str, str], sys_flag: int, flag: int) -> dict[str, object]:
        return {
            "a": self.group,
            "b": mq.topic,
            "c": DEFAULT_TOPIC,
            "d": self.default_topic_queue_nums,
            "e": mq.queue_id,
            "f": sys_flag,
            "g": int(time.time() * 1000),
            "h": flag,
            "i": encode_properties(props),
            "j": 0,
            "k": False,
            "n": mq.broker_name,
        }

    @staticmethod
    def _addr(route: TopicRoute, mq: MessageQueue) -> str:
        addr = route.master_addr(mq.broker_name)
        if addr is None:
            raise ClientError(f"broker {mq.broker_name!r} has no master")
        return addr

    async def _send_one(self, mq: MessageQueue, addr: str, msg: Message, props: dict[str, str]) -> SendResult:
        body, sys_flag = self._body(msg.body)
        resp = await self.instance.request(
            addr,
            RequestCode.SEND_MESSAGE_V2,
            self._header(mq, props, sys_flag, msg.flag),
            body,
            timeout_s=self.send_timeout_s,
            ok=STORED_CODES,
        )
        return _result(resp.code, props[Prop.UNIQ_KEY], resp.ext_fields, mq)

    async def _send_with_retry(
        self, topic: str, attempt: Callable[[MessageQueue, str], Any], queue: MessageQueue | None
    ) -> SendResult:
        deadline = time.monotonic() + self.send_timeout_s
        failed_broker: str | None = None
        last: Exception | None = None
        for n in range(1 + self.retries):
            if n and time.monotonic() >= deadline:
                break
            route = await self.route(topic) if n == 0 else await self._refreshed(topic)
            mq = queue if queue is not None else self._selector.select(route, failed_broker)
            try:
                result: SendResult = await attempt(mq, self._addr(route, mq))
                return result
            except BrokerError as exc:
                if not exc.retriable:
                    raise
                last = exc
            except ClientError as exc:  # timeout, connection lost
                last = exc
            failed_broker = mq.broker_name
            log.info("send to %s failed (%s), retrying", mq, last)
        assert last is not None
        raise last

    async def _refreshed(self, topic: str) -> TopicRoute:
        with contextlib.suppress(BrokerError, ClientError):
            await self.instance.route(topic, refresh=True)
        return await self.route(topic)


def _result(code: int, uniq: str, fields: dict[str, str], mq: MessageQueue) -> SendResult:
    return SendResult(
        status=SendStatus(code),
        msg_id=uniq,
        offset_msg_id=fields.get("msgId", ""),
        queue=MessageQueue(mq.topic, mq.broker_name, int(fields.get("queueId", mq.queue_id))),
        queue_offset=int(fields.get("queueOffset", -1)),
    )
