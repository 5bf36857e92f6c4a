"""The revive service (upstream ``PopReviveService``, pop-and-storage §1.12): messages whose invisible time
passed without an ack go to the group's pop retry topic, or to ``%DLQ%<group>`` once they have been
reconsumed ``retryMaxTimes`` times.

Every ``reviveInterval`` ms, for each revive queue: note ``now``, wait for the revive-log writes already
submitted (so every ack given before ``now`` is in the log), read the queue to its end into the matching
state (:mod:`orbitmq.broker.pop.revive_state`), then revive every due checkpoint: for each of its unacked
offsets read the original (its queue offset must match, upstream #7724), store the retry copy
(``reconsumeTimes + 1``, ``1ST_POP_TIME`` on the first retry, body / flag / properties / born fields kept,
#6339), and once they are stored write a batch ack of those offsets to the revive log so a restart does not
revive them again. Finally commit the revive progress (the group ``CID_RMQ_SYS_REVIVE_GROUP`` in the offset
table): the oldest checkpoint that is still pending, never further.

A failed retry write leaves the offset unrevived; the next round tries again. A message that no longer
exists (retention) or whose group or topic was deleted is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from orbitmq.broker.pop.env import PopEnv
from orbitmq.broker.pop.records import AckMsg, PopCheckPoint, ack_message, parse_revive_record
from orbitmq.broker.pop.revive_state import PendingCheckpoint, ReviveQueueState
from orbitmq.broker.pop.writer import ReviveLogWriter
from orbitmq.broker.subscription_groups import SubscriptionGroupConfig
from orbitmq.broker.topics import Perm, dlq_topic
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.core.service import Service
from orbitmq.protocol.pop import pop_retry_topic_v1
from orbitmq.protocol.record import MessageRecord, Prop, decode_record
from orbitmq.store.api import GetStatus, MessageToStore, PutStatus

__all__ = ["PopReviveService"]

log = logging.getLogger("orbitmq.broker.pop.revive")

_RETRY_PREFIX = "%RETRY%"
#: Revive-log records read per queue and round (the rest waits for the next round).
SCAN_RECORDS_PER_ROUND_MAX = 200_000
_READ_BATCH = 512


class PopReviveService(Service):
    def __init__(
        self,
        env: PopEnv,
        writer: ReviveLogWriter,
        on_retry_topic: Callable[[str, str, str], None] | None = None,
    ) -> None:
        super().__init__("PopReviveService", env.clock)
        self.env = env
        self.writer = writer
        #: Told (retry topic, group, original topic) for every retry topic this service writes to.
        self.on_retry_topic = on_retry_topic
        self.states: dict[int, ReviveQueueState] = {}
        self.corrupt_records = 0
        self._round = asyncio.Lock()  # the periodic task and a caller (tests, shutdown) never interleave

    async def on_start(self) -> None:
        env = self.env
        for qid in range(env.revive_queue_num):
            start = env.revive_progress(qid)
            if start is None:
                start = env.store.min_offset_in_queue(env.revive_topic, qid)
            self.states[qid] = ReviveQueueState(start)

    async def run(self) -> None:
        interval = self.env.config.revive_interval / 1000
        while not self.stopping:
            await self.wait_for_wakeup(interval)
            if self.stopping:
                break
            try:
                await self.revive_once()
            except Exception:
                log.exception("revive round failed; trying again in %.1f s", interval)

    async def revive_once(self) -> int:
        """One round over every revive queue; the number of messages revived."""
        async with self._round:
            return await self._round_locked()

    async def _round_locked(self) -> int:
        env = self.env
        now = env.now()
        await self.writer.barrier()
        revived = 0
        for qid, state in self.states.items():
            self.scan(qid, state)
            revived += await self._revive_due(qid, state, now)
            env.commit_revive_progress(qid, state.commit_offset())
        env.stats.revive_rounds += 1
        return revived

    # -- reading the revive log --------------------------------------------------------------------------
    def scan(self, qid: int, state: ReviveQueueState) -> None:
        env = self.env
        read = 0
        while read < SCAN_RECORDS_PER_ROUND_MAX:
            res = env.store.get_messages(env.revive_topic, qid, state.next_offset, _READ_BATCH,
                                         max_bytes=64 * 1024 * 1024)  # fmt: skip
            if res.status in (GetStatus.OFFSET_TOO_SMALL, GetStatus.OFFSET_OVERFLOW_BADLY):
                log.warning("revive queue %d: offset %d is gone, continuing at %d",
                            qid, state.next_offset, res.next_begin_offset)  # fmt: skip
                state.read_up_to(res.next_begin_offset)
                if res.status is GetStatus.OFFSET_OVERFLOW_BADLY:
                    state.next_offset = res.next_begin_offset
                continue
            if not res.buffers:
                return
            for view in res.buffers:
                self._feed(state, view)
            read += len(res.buffers)
            state.read_up_to(res.next_begin_offset)

    def _feed(self, state: ReviveQueueState, view: memoryview) -> None:
        try:
            record = parse_revive_record(decode_record(view), self.env.broker_name)
        except ProtocolError as exc:
            self.corrupt_records += 1
            log.error("skipping unreadable revive record: %s", exc)
            return
        if record.ck is not None:
            state.on_checkpoint(record.ck)
        elif record.ack is not None:
            state.on_ack(record.ack)

    # -- reviving ----------------------------------------------------------------------------------------
    async def _revive_due(self, qid: int, state: ReviveQueueState, now: int) -> int:
        revived = 0
        for pending in state.due(now):
            done = await self._revive_checkpoint(pending)
            if not done:
                continue
            ck = pending.ck
            marker = AckMsg(ck.start_offset, ck.cid, ck.topic, ck.queue_id, ck.pop_time, ck.broker_name,
                            tuple(done))  # fmt: skip
            env = self.env
            msg = ack_message(marker, env.revive_topic, qid, env.store_host, env.now())
            fut = await self.writer.write(msg, asynchronous=False)
            if fut.cancelled() or fut.exception() is not None or not fut.result().ok:
                log.warning("revive marker of %s not stored; its messages may be revived again", ck.key)
            state.revived(ck.key, done)
            revived += len(done)
        return revived

    async def _revive_checkpoint(self, pending: PendingCheckpoint) -> list[int]:
        """Store retries of the unacked messages; the offsets that are done (revived or gone)."""
        env = self.env
        ck = pending.ck
        offsets = pending.unacked_offsets()
        group = env.subscription_groups.get(ck.cid)
        if group is None or env.topics.select_topic_config(ck.topic) is None:
            log.info("dropping checkpoint %s: its group or topic no longer exists", ck.key)
            return offsets
        done: list[int] = []
        for offset in offsets:
            res = env.store.get_messages(ck.topic, ck.queue_id, offset, 1)
            if not res.buffers or res.queue_offsets[0] != offset:
                log.warning(
                    "message %s q%d offset %d no longer exists; not revived", ck.topic, ck.queue_id, offset
                )
                done.append(offset)
                continue
            msg = self._retry_message(ck, decode_record(res.buffers[0]), group)
            result = await env.store.put_message(msg)
            if result.status not in (PutStatus.PUT_OK, PutStatus.FLUSH_DISK_TIMEOUT):
                log.warning("revive of %s offset %d failed (%s); retrying next round",
                            ck.key, offset, result.status.value)  # fmt: skip
                break
            done.append(offset)
        return done

    def _retry_message(
        self, ck: PopCheckPoint, rec: MessageRecord, group: SubscriptionGroupConfig
    ) -> MessageToStore:
        env = self.env
        props = dict(rec.properties)
        props.pop(Prop.POP_CK, None)
        if rec.reconsume_times == 0 or Prop.FIRST_POP_TIME not in props:
            props[Prop.FIRST_POP_TIME] = str(ck.pop_time)
        original = ck.topic
        if ck.topic.startswith(_RETRY_PREFIX):
            original = ck.topic.removeprefix(f"{_RETRY_PREFIX}{ck.cid}_")
        if rec.reconsume_times >= group.retry_max_times:
            return self._dead_letter(ck, rec, props, original)
        retry = ck.topic if ck.topic.startswith(_RETRY_PREFIX) else pop_retry_topic_v1(ck.topic, ck.cid)
        try:
            env.topics.create_topic_in_send_back(retry, 1, int(Perm.RW))
        except BrokerError as exc:
            log.error("cannot create retry topic %s (%s): message goes to the DLQ", retry, exc.remark)
            return self._dead_letter(ck, rec, props, original)
        if self.on_retry_topic is not None:
            self.on_retry_topic(retry, ck.cid, original)
        env.stats.revived_messages += 1
        return MessageToStore.copy_of(
            rec, topic=retry, queue_id=0, properties=props, reconsume_times=rec.reconsume_times + 1
        )

    def _dead_letter(
        self, ck: PopCheckPoint, rec: MessageRecord, props: dict[str, str], original: str
    ) -> MessageToStore:
        env = self.env
        env.topics.create_dlq_topic(ck.cid)
        props.setdefault(Prop.DLQ_ORIGIN_TOPIC, original)
        props.setdefault(Prop.DLQ_ORIGIN_MESSAGE_ID, rec.msg_id)
        env.stats.dead_lettered += 1
        log.info("message %s of group %s goes to %s after %d reconsumes",
                 rec.msg_id, ck.cid, dlq_topic(ck.cid), rec.reconsume_times)  # fmt: skip
        return MessageToStore.copy_of(
            rec,
            topic=dlq_topic(ck.cid),
            queue_id=0,
            properties=props,
            reconsume_times=rec.reconsume_times + 1,
        )
