"""The receive side: ReceiveMessage (pops, with long polling), AckMessage, ChangeInvisibleDuration,
ForwardMessageToDeadLetterQueue and the auto-renew of push consumers' handles.

A receive pops from every queue of a broker (the request's queue id is irrelevant, as in the Java proxy:
Node consumers only ever name queue 0), chooses brokers with :class:`LongPoller`, and answers with the
stream shape both clients read: ``status``, one ``message`` each, then ``delivery_timestamp``. A message
already delivered ``max_attempts`` times is sent to ``%DLQ%<group>`` instead (CONSUMER_SEND_MSG_BACK,
delay level -1) and acked. Messages popped for a receive that cannot be answered (the client went away)
are handed back at once (invisible for ``invisibleTimeMillisWhenClear``) instead of staying hidden.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from rocketmq.grpc_protocol import service_pb2 as spb

from orbitmq.client.pop import (
    PoppedRecord,
    PopResult,
    PopStatus,
    ack_message,
    change_invisible_time,
    notification,
    pop_message,
)
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.protocol.codes import RequestCode, ResponseCode, error_for
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import (
    INIT_MODE_MAX,
    NotificationRequestHeader,
    NotificationResponseHeader,
    PopMessageRequestHeader,
)
from orbitmq.protocol.record import Prop
from orbitmq.proxy.clients import ClientSession
from orbitmq.proxy.convert import duration_ms, ms_timestamp, record_to_message, subscription_filter
from orbitmq.proxy.longpoll import (
    BROKER_ANSWER_MARGIN_MS,
    FalseEmptyTracker,
    LongPoller,
    PollPlan,
    polling_time_ms,
)
from orbitmq.proxy.processor import CallContext, Processor
from orbitmq.proxy.receipt import ReceiptHandle
from orbitmq.proxy.renew import HandleRegistry, RenewRecord, RenewService
from orbitmq.proxy.status import Code, ProxyError, error_status, ok_status, status

__all__ = ["Receiver"]

log = logging.getLogger("orbitmq.proxy")

#: While the topic does not exist yet, a receive looks again this often (until its poll time is over).
TOPIC_RECHECK_S = 1.0
_DEFAULT_MAX_ATTEMPTS = 17


@dataclass(frozen=True, slots=True)
class ReceiveSpec:
    group: str
    topic: str
    batch: int
    invisible_ms: int
    exp_type: str
    exp: str
    fifo: bool
    max_attempts: int
    auto_renew: bool
    attempt_id: str | None
    preferred_broker: str | None
    long_polling: bool
    deadline: float


class _Ops:
    """Pop / notify one broker for one receive (the :class:`PopOps` of the long poller)."""

    def __init__(self, receiver: Receiver, spec: ReceiveSpec) -> None:
        self.r, self.spec = receiver, spec

    async def pop(self, broker: str, poll_ms: int, timeout_s: float) -> PopResult:
        s = self.spec
        poll = max(0, poll_ms - BROKER_ANSWER_MARGIN_MS) if poll_ms else 0
        header = PopMessageRequestHeader(
            s.group, s.topic, -1, s.batch, s.invisible_ms, poll, self.r.proc.clock.now_ms(), INIT_MODE_MAX,
            s.exp_type, s.exp, s.fifo, s.attempt_id,
        )  # fmt: skip
        return await pop_message(self.r.invoker(broker), broker, header, timeout_s)

    async def notify(self, broker: str, poll_ms: int, timeout_s: float) -> NotificationResponseHeader:
        s = self.spec
        poll = max(0, poll_ms - BROKER_ANSWER_MARGIN_MS)
        header = NotificationRequestHeader(
            s.group, s.topic, -1, poll, self.r.proc.clock.now_ms(), s.fifo, s.attempt_id
        )
        try:
            return await notification(self.r.invoker(broker), header, timeout_s)
        except ClientError:
            return NotificationResponseHeader(False, False)  # no answer in time: nothing to pop there


class Receiver:
    def __init__(self, proc: Processor) -> None:
        self.proc = proc
        self.config, self.clock, self.counters = proc.config, proc.clock, proc.counters
        self.poller = LongPoller(proc.config, proc.clock, proc.counters)
        self.false_empties = FalseEmptyTracker()
        self.handles = HandleRegistry()
        self.renewal = RenewService(self.handles, self._renew, proc.config, proc.clock, proc.counters)
        self._background: set[asyncio.Task[None]] = set()
        self._polls: set[asyncio.Task[PopResult]] = set()
        self._closing = False

    def invoker(self, broker: str) -> Any:
        backend = self.proc.backend

        async def invoke(cmd: RemotingCommand, timeout_s: float) -> RemotingCommand:
            return await backend.invoke(broker, cmd, timeout_s)

        return invoke

    async def start(self) -> None:
        await self.renewal.start()

    async def stop(self) -> None:
        """Answer parked receives now (empty), stop renewing, finish hand-backs in flight."""
        self._closing = True
        for task in list(self._polls):
            task.cancel()
        await self.renewal.stop()
        if self._background:
            await asyncio.wait(set(self._background), timeout=5.0)

    # -- ReceiveMessage --------------------------------------------------------------------------------
    async def receive(self, request: Any, ctx: CallContext, session: ClientSession) -> AsyncIterator[Any]:
        self.counters.receives += 1
        delivered: list[PoppedRecord] = []
        try:
            spec = await self._spec(request, ctx, session)
            result = await self._poll(spec)
            delivered = await self._post_filter(spec, result.messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, ProxyError | BrokerError | ClientError):
                log.exception("receive for %s failed", ctx.client_id)
            self.counters.grpc_errors += 1
            yield spb.ReceiveMessageResponse(status=error_status(exc))
            yield spb.ReceiveMessageResponse(delivery_timestamp=ms_timestamp(self.clock.now_ms()))
            return
        key = (spec.group, spec.topic)
        if not delivered:
            self.counters.empty_receives += 1
            self.false_empties.empty(key, self.clock.now_ms())
            yield spb.ReceiveMessageResponse(status=status(Code.MESSAGE_NOT_FOUND, "no new message"))
            yield spb.ReceiveMessageResponse(delivery_timestamp=ms_timestamp(self.clock.now_ms()))
            return
        firsts = [m.record.store_timestamp for m in delivered if m.reconsume_times == 0]
        if self.false_empties.delivered(key, firsts):
            self.counters.false_empties += 1
        finished = False
        try:
            messages = [self._message(spec, m, ctx) for m in delivered]
            yield spb.ReceiveMessageResponse(status=ok_status())
            for message in messages:
                yield spb.ReceiveMessageResponse(message=message)
            yield spb.ReceiveMessageResponse(delivery_timestamp=ms_timestamp(self.clock.now_ms()))
            finished = True
            self.counters.messages_received += len(messages)
        finally:
            if not finished:
                self._hand_back(spec, ctx.client_id, delivered)

    async def _spec(self, request: Any, ctx: CallContext, session: ClientSession) -> ReceiveSpec:
        cfg = self.config
        group = _name(request.group.name, Code.ILLEGAL_CONSUMER_GROUP, "consumer group")
        topic = _name(request.message_queue.topic.name, Code.ILLEGAL_TOPIC, "topic")
        if request.batch_size <= 0:
            raise ProxyError(Code.BAD_REQUEST, f"batch size {request.batch_size} must be positive")
        batch = min(request.batch_size, cfg.grpc_client_consumer_long_polling_batch_size)
        auto_renew = request.auto_renew and cfg.enable_proxy_auto_renew
        if auto_renew:
            invisible = cfg.renew_slice_time_millis
        else:
            invisible = duration_ms(request.invisible_duration)
            if not cfg.min_invisible_time_mills_for_recv <= invisible <= cfg.max_invisible_time_mills:
                raise ProxyError(
                    Code.ILLEGAL_INVISIBLE_TIME,
                    f"invisible duration {invisible} ms is outside [{cfg.min_invisible_time_mills_for_recv}, "
                    f"{cfg.max_invisible_time_mills}]",
                )
        exp_type, exp = subscription_filter(request.filter_expression)
        self.proc.members.receiving(ctx.client_id, group, topic, exp_type, exp, session.address)
        settings = session.settings
        if settings is not None and settings.subscription.group.name == group:
            fifo, attempts = bool(settings.subscription.fifo), int(settings.backoff_policy.max_attempts)
        else:  # a receive for a group the client's settings do not name: the group's own settings
            known = await self.proc.metadata.group_settings(group, request.message_queue.broker.name or None)
            fifo, attempts = known.fifo, known.max_attempts
        remaining_ms = ctx.time_remaining * 1000 if ctx.time_remaining is not None else None
        request_timeout = 3000
        if settings is not None and settings.HasField("request_timeout"):
            request_timeout = duration_ms(settings.request_timeout) or request_timeout
        requested = (
            duration_ms(request.long_polling_timeout) if request.HasField("long_polling_timeout") else None
        )
        poll_ms = polling_time_ms(requested, remaining_ms, request_timeout, cfg, ctx.version)
        return ReceiveSpec(
            group, topic, batch, invisible, exp_type, exp, fifo, attempts or _DEFAULT_MAX_ATTEMPTS, auto_renew,
            request.attempt_id or None, request.message_queue.broker.name or None, poll_ms > 0,
            self.clock.monotonic() + poll_ms / 1000,
        )  # fmt: skip

    async def _poll(self, spec: ReceiveSpec) -> PopResult:
        """The pop(s) of one receive, in a task of its own: if the client goes away meanwhile, what the
        pop still finds is handed back instead of staying invisible for the whole invisible time."""
        task = asyncio.get_running_loop().create_task(self._poll_until_topic_exists(spec))
        self._polls.add(task)
        task.add_done_callback(self._polls.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: self._abandoned(spec, t))
            raise

    def _abandoned(self, spec: ReceiveSpec, task: asyncio.Task[PopResult]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self._hand_back(spec, "", list(task.result().messages))

    async def _poll_until_topic_exists(self, spec: ReceiveSpec) -> PopResult:
        if self._closing:
            return PopResult(PopStatus.NO_NEW_MSG)
        try:
            while True:
                try:
                    route = await self.proc.metadata.route(spec.topic)
                    brokers = tuple(sorted({q.broker_name for q in route.subscribe_queues}))
                    plan = PollPlan(brokers, spec.preferred_broker, spec.deadline, spec.long_polling)
                    return await self.poller.receive(_Ops(self, spec), (spec.group, spec.topic), plan)
                except BrokerError as exc:
                    if exc.code != ResponseCode.TOPIC_NOT_EXIST:
                        raise
                left = spec.deadline - self.clock.monotonic()
                if left <= 0 or not spec.long_polling:
                    return PopResult(PopStatus.NO_NEW_MSG)
                # Not created yet (consumers often start before the first send creates it): look again.
                await self.clock.sleep(min(TOPIC_RECHECK_S, left))
                await self.proc.metadata.route(spec.topic, refresh=True)
        except asyncio.CancelledError:
            if self._closing:
                return PopResult(PopStatus.NO_NEW_MSG)
            raise

    async def _post_filter(self, spec: ReceiveSpec, popped: Sequence[PoppedRecord]) -> list[PoppedRecord]:
        """Drop what must not be delivered: messages over the attempt limit go to the DLQ; tag mismatches
        (a tag-code collision on the broker) are acked silently, as the Java proxy does."""
        tags = _tag_set(spec.exp_type, spec.exp)
        out: list[PoppedRecord] = []
        for m in popped:
            try:
                if tags is not None and m.record.properties.get(Prop.TAGS) not in tags:
                    await self._ack_info(m.broker_name, spec.group, spec.topic, m)
                elif m.reconsume_times >= spec.max_attempts:
                    await self._to_dlq(spec.group, spec.topic, m.broker_name, m.record.physical_offset,
                                       m.record.msg_id, spec.max_attempts - 1)  # fmt: skip
                    await self._ack_info(m.broker_name, spec.group, spec.topic, m)
                    self.counters.messages_to_dlq += 1
                else:
                    out.append(m)
            except (BrokerError, ClientError) as exc:
                log.warning(
                    "post-filter of %s (%s) failed, it comes back later: %s", m.record.msg_id, spec.group, exc
                )
        return out

    def _message(self, spec: ReceiveSpec, m: PoppedRecord, ctx: CallContext) -> Any:
        handle = ReceiptHandle(m.extra_info, m.record.physical_offset)
        if spec.auto_renew:
            self.handles.add(
                RenewRecord(
                    ctx.client_id, spec.group, spec.topic, m.record.msg_id, handle, self.clock.now_ms()
                )
            )
        return record_to_message(
            m.record, spec.topic, receipt_handle=handle.encode(), reconsume_times=m.reconsume_times,
            invisible_ms=spec.invisible_ms,
        )  # fmt: skip

    def _hand_back(self, spec: ReceiveSpec, client_id: str, popped: Sequence[PoppedRecord]) -> None:
        """Make undelivered messages visible again soon (``invisibleTimeMillisWhenClear``)."""
        if not popped:
            return
        for m in popped:
            self.handles.pop((client_id, spec.group, m.record.msg_id))

        async def run() -> None:
            for m in popped:
                handle = ReceiptHandle(m.extra_info, m.record.physical_offset)
                try:
                    await self._change(
                        spec.group, spec.topic, handle, self.config.invisible_time_millis_when_clear
                    )
                except (ProxyError, BrokerError, ClientError) as exc:
                    log.info(
                        "hand-back of %s failed (it comes back after its invisible time): %s",
                        m.record.msg_id,
                        exc,
                    )

        self._spawn(run())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- ack / change / DLQ ----------------------------------------------------------------------------
    async def _current(self, client_id: str, group: str, message_id: str, text: str) -> ReceiptHandle:
        """The handle to use: the latest renewed one if the proxy renews this message, else the client's."""
        record = self.handles.pop((client_id, group, message_id))
        if record is not None:
            return await record.latest_handle()
        handle = ReceiptHandle.decode(text)
        handle.check_not_expired(self.clock.now_ms())
        return handle

    async def ack(self, request: Any, ctx: CallContext, session: ClientSession) -> Any:
        group = _name(request.group.name, Code.ILLEGAL_CONSUMER_GROUP, "consumer group")
        topic = _name(request.topic.name, Code.ILLEGAL_TOPIC, "topic")
        entries = []
        for e in request.entries:
            try:
                handle = await self._current(ctx.client_id, group, e.message_id, e.receipt_handle)
                await ack_message(self.invoker(handle.broker_name), group, topic, handle.info, ctx.timeout())
                self.counters.acks += 1
                entry_status = ok_status()
            except (ProxyError, BrokerError, ClientError) as exc:
                self.counters.ack_errors += 1
                entry_status = error_status(exc)
            entries.append(
                spb.AckMessageResultEntry(
                    message_id=e.message_id, receipt_handle=e.receipt_handle, status=entry_status
                )
            )
        codes = {e.status.code for e in entries}
        top = status(codes.pop()) if len(codes) == 1 else status(Code.MULTIPLE_RESULTS)
        return spb.AckMessageResponse(status=top if entries else ok_status(), entries=entries)

    async def change_invisible(self, request: Any, ctx: CallContext, session: ClientSession) -> str:
        group = _name(request.group.name, Code.ILLEGAL_CONSUMER_GROUP, "consumer group")
        topic = _name(request.topic.name, Code.ILLEGAL_TOPIC, "topic")
        invisible = duration_ms(request.invisible_duration)
        if not 0 <= invisible <= self.config.max_invisible_time_mills:
            raise ProxyError(
                Code.ILLEGAL_INVISIBLE_TIME, f"invisible duration {invisible} ms is out of range"
            )
        handle = await self._current(ctx.client_id, group, request.message_id, request.receipt_handle)
        new = await self._change(group, topic, handle, invisible)
        self.counters.invisible_changes += 1
        return new.encode()

    async def _change(
        self, group: str, topic: str, handle: ReceiptHandle, invisible_ms: int
    ) -> ReceiptHandle:
        info = await change_invisible_time(
            self.invoker(handle.broker_name), group, topic, handle.info, invisible_ms, 3.0
        )
        return dataclasses.replace(handle, info=info)

    async def _renew(self, record: RenewRecord, invisible_ms: int) -> ReceiptHandle:
        return await self._change(record.group, record.topic, record.handle, invisible_ms)

    async def forward_to_dlq(self, request: Any, ctx: CallContext, session: ClientSession) -> None:
        group = _name(request.group.name, Code.ILLEGAL_CONSUMER_GROUP, "consumer group")
        topic = _name(request.topic.name, Code.ILLEGAL_TOPIC, "topic")
        handle = await self._current(ctx.client_id, group, request.message_id, request.receipt_handle)
        await self._to_dlq(group, topic, handle.broker_name, handle.commit_log_offset, request.message_id,
                           max(0, request.max_delivery_attempts - 1))  # fmt: skip
        await ack_message(self.invoker(handle.broker_name), group, topic, handle.info, ctx.timeout())
        self.counters.messages_to_dlq += 1

    async def _to_dlq(
        self, group: str, topic: str, broker: str, commit_log_offset: int, message_id: str, max_reconsume: int
    ) -> None:
        fields = {
            "group": group, "offset": str(commit_log_offset), "delayLevel": "-1", "originMsgId": message_id,
            "originTopic": topic, "unitMode": "false", "maxReconsumeTimes": str(max_reconsume),
        }  # fmt: skip
        cmd = RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, fields)
        resp = await self.proc.backend.invoke(broker, cmd, 3.0)
        if resp.code != ResponseCode.SUCCESS:
            raise error_for(resp.code, resp.remark or "")

    async def _ack_info(self, broker: str, group: str, topic: str, m: PoppedRecord) -> None:
        await ack_message(self.invoker(broker), group, topic, m.extra_info, 3.0)

    async def client_gone(self, session: ClientSession) -> None:
        """NotifyClientTermination: the client's renewed messages come back soon instead of after a slice."""
        records = self.handles.of_client(session.client_id)
        for r in records:
            self.handles.pop(r.key)

        async def run() -> None:
            for r in records:
                try:
                    handle = await r.latest_handle()
                    await self._change(r.group, r.topic, handle, self.config.invisible_time_millis_when_clear)
                except (ProxyError, BrokerError, ClientError) as exc:
                    log.debug("release of %s failed: %s", r.message_id, exc)

        if records:
            self._spawn(run())


def _name(name: str, code: int, what: str) -> str:
    if not name:
        raise ProxyError(code, f"{what} is empty")
    return name


def _tag_set(exp_type: str, exp: str) -> frozenset[str] | None:
    """The tags a TAG expression accepts; None for "everything" (``*``) or SQL92."""
    if exp_type != "TAG" or exp.strip() == "*":
        return None
    return frozenset(t.strip() for t in exp.split("||") if t.strip())
