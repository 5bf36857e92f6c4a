"""ACK_MESSAGE, BATCH_ACK_MESSAGE and CHANGE_MESSAGE_INVISIBLETIME for non-FIFO pops (pop-and-storage
§1.10, §1.11). FIFO handles (revive queue 999) are delegated to the orderly lock table.

An ack is a record in the revive log that marks offsets of one checkpoint; duplicate and late acks mark
nothing new and are harmless (§1.16). Changing the invisible time writes a new single-message checkpoint
and, only once that is stored, acks the old one: the message is covered by at least one checkpoint at
every moment, so neither a crash nor a failed write can lose it (at worst it comes back early, once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from orbitmq.broker.pop.checkpoints import CheckpointStore, is_stored, when_done
from orbitmq.broker.pop.env import PopEnv
from orbitmq.broker.pop.orderly import ACK_ILLEGAL, ACK_STALE, OrderInfoManager
from orbitmq.broker.pop.records import AckMsg, PopCheckPoint
from orbitmq.core.errors import BrokerError
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.pop import ExtraInfo
from orbitmq.store.api import PutResult

__all__ = ["Acker", "ChangedVisibility"]

log = logging.getLogger("orbitmq.broker.pop")


@dataclass(frozen=True, slots=True)
class ChangedVisibility:
    """The answer to a change of invisible time: what the client builds the new handle from."""

    pop_time: int
    invisible_time: int
    revive_qid: int


#: ``wake(topic, group, queue_id, delay_s)``: a FIFO queue may unblock in ``delay_s`` (0: now).
WakeHook = Callable[[str, str, int, float], None]


class Acker:
    def __init__(
        self,
        env: PopEnv,
        checkpoints: CheckpointStore,
        orderly: OrderInfoManager,
        wake: WakeHook | None = None,
    ) -> None:
        self.env = env
        self.checkpoints = checkpoints
        self.orderly = orderly
        self.wake = wake

    def _check_revive_qid(self, revive_qid: int) -> None:
        if not 0 <= revive_qid < self.env.revive_queue_num:
            raise BrokerError(
                ResponseCode.MESSAGE_ILLEGAL,
                f"revive queue {revive_qid} of the receipt handle does not exist on this broker",
            )

    def ack_msg(
        self, group: str, real_topic: str, queue_id: int, extra: ExtraInfo, offsets: tuple[int, ...]
    ) -> AckMsg:
        return AckMsg(
            start_offset=extra.ck_offset, consumer_group=group, topic=real_topic, queue_id=queue_id,
            pop_time=extra.pop_time, broker_name=extra.broker_name or self.env.broker_name,
            ack_offsets=offsets,
        )  # fmt: skip

    async def ack(self, group: str, real_topic: str, queue_id: int, offset: int, extra: ExtraInfo) -> None:
        """Ack one message of a non-FIFO pop. The store's verdict is not the client's business: a lost
        ack only means one more delivery (upstream answers SUCCESS too, §6.6)."""
        self._check_revive_qid(extra.revive_qid)
        self.env.stats.acks += 1
        wait = self.checkpoints.ack(
            self.ack_msg(group, real_topic, queue_id, extra, (offset,)), extra.revive_qid
        )
        if wait is not None:
            await asyncio.shield(wait)

    async def batch_ack(self, acks: list[tuple[AckMsg, int]]) -> None:
        """Several checkpoints' acks (one record each); each item is (ack, revive queue id)."""
        waits: list[asyncio.Future[PutResult]] = []
        for ack, revive_qid in acks:
            self._check_revive_qid(revive_qid)
            self.env.stats.acks += len(ack.ack_offsets)
            wait = self.checkpoints.ack(ack, revive_qid)
            if wait is not None:
                waits.append(wait)
        if waits:
            await asyncio.gather(*(asyncio.shield(w) for w in waits))

    async def change_invisible_time(
        self, group: str, real_topic: str, queue_id: int, offset: int, extra: ExtraInfo, invisible_time: int
    ) -> ChangedVisibility:
        env = self.env
        self._check_revive_qid(extra.revive_qid)
        env.stats.change_invisible += 1
        # The new checkpoint must not share the old one's key, or acking the old handle would also ack
        # the new checkpoint (a change within the millisecond of the pop): pop times strictly increase.
        pop_time = max(env.now(), extra.pop_time + 1)
        ck = PopCheckPoint(
            start_offset=offset, pop_time=pop_time, invisible_time=invisible_time, num=1, queue_id=queue_id,
            topic=real_topic, cid=group, broker_name=extra.broker_name or env.broker_name,
            queue_offset_diff=[0],
        )  # fmt: skip
        old_ack = self.ack_msg(group, real_topic, queue_id, extra, (offset,))
        both_async = env.config.append_ck_async and env.config.append_ack_async
        fut, wait = self.checkpoints.write_checkpoint(ck, extra.revive_qid, asynchronous=both_async)
        answer = ChangedVisibility(pop_time, invisible_time, extra.revive_qid)
        if not wait:

            def then_ack_old(stored: bool) -> None:
                if stored:
                    self.checkpoints.ack(old_ack, extra.revive_qid)
                else:
                    log.error("new checkpoint of %s not stored: the old handle stays in force", ck.key)

            when_done(fut, then_ack_old)
            return answer
        await asyncio.shield(fut)
        if not is_stored(fut):
            raise BrokerError(ResponseCode.SYSTEM_ERROR, "the new checkpoint could not be stored")
        ack_wait = self.checkpoints.ack(old_ack, extra.revive_qid)
        if ack_wait is not None:
            await asyncio.shield(ack_wait)
        return answer

    # -- FIFO ----------------------------------------------------------------------------------------------
    def ack_orderly(self, group: str, topic: str, queue_id: int, offset: int, pop_time: int) -> None:
        """Ack one message of a FIFO batch: the committed offset moves to the first unacked one. Acks below
        the committed offset and acks with a stale handle are ignored (idempotent, §1.14)."""
        env = self.env
        committed = env.offsets.query_offset(group, topic, queue_id)
        if committed is not None and offset < committed:
            return
        key = (topic, group, queue_id)
        nxt = self.orderly.commit_and_next(key, offset, pop_time)
        if nxt == ACK_ILLEGAL:
            raise BrokerError(
                ResponseCode.MESSAGE_ILLEGAL, f"offset {offset} is not in the FIFO batch of {key}"
            )
        if nxt == ACK_STALE:
            return
        env.stats.acks += 1
        if not env.offsets.has_offset_reset(group, topic, queue_id):
            env.offsets.commit_offset(group, topic, queue_id, nxt, "pop ack")
        if self.wake is not None and not self.orderly.check_block(key, None, env.now()):
            self.wake(topic, group, queue_id, 0.0)

    def change_invisible_orderly(
        self, group: str, topic: str, queue_id: int, offset: int, extra: ExtraInfo, invisible_time: int
    ) -> ChangedVisibility:
        """FIFO: the message becomes visible ``invisible_time`` from now; no checkpoint is involved. The
        handle keeps its pop time (upstream answers ``invisibleTime = nextVisible - popTime``)."""
        env = self.env
        env.stats.change_invisible += 1
        committed = env.offsets.query_offset(group, topic, queue_id)
        key = (topic, group, queue_id)
        if committed is not None and offset < committed:
            return ChangedVisibility(extra.pop_time, extra.invisible_time, extra.revive_qid)
        next_visible = env.now() + invisible_time
        if (
            self.orderly.change_visibility(key, offset, extra.pop_time, next_visible)
            and self.wake is not None
        ):
            info = self.orderly.get(key)
            until = info.blocked_until() if info is not None else None
            if until is not None:
                self.wake(topic, group, queue_id, max(0, until - env.now()) / 1000)
        return ChangedVisibility(extra.pop_time, next_visible - extra.pop_time, extra.revive_qid)
