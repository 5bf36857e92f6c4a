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
from dataclasses import dataclass

from orbitmq.broker.pop.checkpoints import CheckpointStore, is_stored, when_done
from orbitmq.broker.pop.env import PopEnv
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


class Acker:
    def __init__(self, env: PopEnv, checkpoints: CheckpointStore) -> None:
        self.env = env
        self.checkpoints = checkpoints

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
