"""The merge buffer (``enablePopBufferMerge``, upstream ``PopBufferMergeService``, pop-and-storage §1.8).

A checkpoint whose invisible time is long enough is kept in memory for at most ``popCkStayBufferTime`` ms
instead of being written at once; acks of its messages set bits in memory. A checkpoint whose messages are
all acked in time never reaches the revive log (one CK and N ACK writes saved) and its pop's offset moves
at once. Otherwise, ``popCkStayBufferTime`` after the pop or ``popCkStayBufferTimeOut`` before its revive
time (whichever comes first), the checkpoint is written, followed by one batch ack of the bits set so far;
later acks go to the log as usual. The revive service therefore sees every unfinished checkpoint in the log
well before it is due.

The pop's offset entry completes when the checkpoint is stored or fully acked, never before, so a crash
while a checkpoint sits in the buffer costs duplicates, not messages. The buffer holds at most
``popCkMaxBufferSize`` checkpoints; past that they are written directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from orbitmq.broker.pop.env import PopEnv
from orbitmq.broker.pop.inflight import PopEntry
from orbitmq.broker.pop.records import AckMsg, CkKey, PopCheckPoint
from orbitmq.core.service import Service

__all__ = ["BUFFER_SCAN_INTERVAL_S", "BufferedCheckpoint", "PopBufferMergeService"]

log = logging.getLogger("orbitmq.broker.pop.buffer")

#: How often the buffer looks for checkpoints to write out (upstream: 5 ms; far below its 3 s margin).
BUFFER_SCAN_INTERVAL_S = 0.1
#: Upstream's extra margin (ms) on top of ``popCkStayBufferTimeOut`` when accepting a CK or an ack.
MARGIN_MS = 1500


@dataclass(eq=False, slots=True)
class BufferedCheckpoint:
    ck: PopCheckPoint
    revive_qid: int
    entry: PopEntry
    acked: int = 0  # bit i: message i acked

    @property
    def all_acked(self) -> bool:
        full = (1 << self.ck.num) - 1
        return self.acked & full == full

    def acked_offsets(self) -> tuple[int, ...]:
        return tuple(self.ck.offset_at(i) for i in range(self.ck.num) if self.acked >> i & 1)


#: ``flush(buffered)``: write the checkpoint and then the acks gathered so far.
FlushHook = Callable[[BufferedCheckpoint], None]
#: ``done(entry)``: the pop entry of a checkpoint acked completely in memory.
DoneHook = Callable[[PopEntry], None]


class PopBufferMergeService(Service):
    def __init__(self, env: PopEnv, flush: FlushHook, done: DoneHook) -> None:
        super().__init__("PopBufferMergeService", env.clock)
        self.env = env
        self._flush = flush
        self._done = done
        self._buffer: dict[CkKey, BufferedCheckpoint] = {}

    @property
    def size(self) -> int:
        return len(self._buffer)

    @property
    def enabled(self) -> bool:
        return self.env.config.enable_pop_buffer_merge and self.running

    def add(self, ck: PopCheckPoint, revive_qid: int, entry: PopEntry) -> bool:
        """Keep ``ck`` in memory; False when it must be written now (buffer off or full, invisible time
        too short to be worth it, or a checkpoint with the same key is already buffered, upstream #7031)."""
        cfg = self.env.config
        if not self.enabled or len(self._buffer) >= cfg.pop_ck_max_buffer_size:
            return False
        if ck.revive_time - self.env.now() < cfg.pop_ck_stay_buffer_time_out + MARGIN_MS:
            return False
        if ck.key in self._buffer:
            return False
        self._buffer[ck.key] = BufferedCheckpoint(ck, revive_qid, entry)
        return True

    def add_ack(self, ack: AckMsg) -> bool:
        """Set the bits of ``ack`` on its buffered checkpoint; False when the ack must be written (no such
        checkpoint here, or too close to its revive time for the buffer to be trusted with it)."""
        if not self.enabled:
            return False
        buffered = self._buffer.get(ack.key)
        if buffered is None:
            return False
        cfg = self.env.config
        now = self.env.now()
        ck = buffered.ck
        if ck.revive_time - now < cfg.pop_ck_stay_buffer_time_out + MARGIN_MS:
            return False
        if now - ck.pop_time > cfg.pop_ck_stay_buffer_time - MARGIN_MS:
            return False
        for offset in ack.ack_offsets:
            index = ck.index_of_ack(offset)
            if index >= 0:
                buffered.acked |= 1 << index
        self.env.stats.acks_merged += len(ack.ack_offsets)
        if buffered.all_acked:
            del self._buffer[ack.key]
            self.env.stats.checkpoints_merged += 1
            self._done(buffered.entry)
        return True

    def scan(self, *, everything: bool = False) -> int:
        """Write out the checkpoints whose time in the buffer is up (all of them when ``everything``)."""
        cfg = self.env.config
        now = self.env.now()
        due = [
            b
            for b in self._buffer.values()
            if everything
            or now - b.ck.pop_time >= cfg.pop_ck_stay_buffer_time
            or b.ck.revive_time - now <= cfg.pop_ck_stay_buffer_time_out
        ]
        for buffered in due:
            del self._buffer[buffered.ck.key]
            self._flush(buffered)
        return len(due)

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(BUFFER_SCAN_INTERVAL_S)
            try:
                self.scan()
            except Exception:
                log.exception("merge buffer scan failed")

    async def on_stop(self) -> None:
        """Nothing stays in memory at shutdown: every buffered checkpoint goes to the log."""
        flushed = self.scan(everything=True)
        if flushed:
            log.info("wrote %d buffered checkpoints at shutdown", flushed)
