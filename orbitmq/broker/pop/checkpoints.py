"""Where checkpoints and acks go once a pop or an ack has decided them: to the revive log through the
retrying :class:`~orbitmq.broker.pop.writer.ReviveLogWriter` (synchronously or not, per ``appendCkAsync``
/ ``appendAckAsync``), and, with ``enablePopBufferMerge``, first to the in-memory merge buffer.

A pop's offset commit waits for its checkpoint: the pop's :class:`PopEntry` is completed by the write's
completion callback, never by the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from orbitmq.broker.pop.buffer import BufferedCheckpoint, PopBufferMergeService
from orbitmq.broker.pop.env import PopEnv
from orbitmq.broker.pop.inflight import PopEntry, PopOffsets
from orbitmq.broker.pop.records import AckMsg, PopCheckPoint, ack_message, ck_message
from orbitmq.broker.pop.writer import ReviveLogWriter
from orbitmq.store.api import PutResult, PutStatus

__all__ = ["CheckpointStore", "is_stored", "when_done"]

log = logging.getLogger("orbitmq.broker.pop")


def is_stored(fut: asyncio.Future[PutResult]) -> bool:
    if fut.cancelled() or fut.exception() is not None:
        return False
    return fut.result().status in (PutStatus.PUT_OK, PutStatus.FLUSH_DISK_TIMEOUT)


def when_done(fut: asyncio.Future[PutResult], fn: Callable[[bool], None]) -> None:
    """Call ``fn(stored)`` once ``fut`` resolves: now if it already has (deterministic for sync writes)."""
    if fut.done():
        fn(is_stored(fut))
    else:
        fut.add_done_callback(lambda f: fn(is_stored(f)))


class CheckpointStore:
    def __init__(self, env: PopEnv, writer: ReviveLogWriter, pop_offsets: PopOffsets) -> None:
        self.env = env
        self.writer = writer
        self.pop_offsets = pop_offsets
        self.buffer = PopBufferMergeService(env, self._flush_buffered, pop_offsets.complete)

    def checkpoint(
        self, ck: PopCheckPoint, revive_qid: int, entry: PopEntry
    ) -> asyncio.Future[PutResult] | None:
        """Persist the checkpoint of a pop (or keep it in the merge buffer); ``entry`` completes when it is
        stored or fully acked. Returns the future the request must wait for (synchronous mode, or
        back-pressure), else None."""
        if self.buffer.add(ck, revive_qid, entry):
            return None
        return self._write_checkpoint(ck, revive_qid, entry, asynchronous=self.env.config.append_ck_async)

    def _flush_buffered(self, buffered: BufferedCheckpoint) -> None:
        """A checkpoint leaves the merge buffer: write it, then the acks it gathered (after it in the log).
        No request waits for these writes."""
        self._write_checkpoint(buffered.ck, buffered.revive_qid, buffered.entry, asynchronous=True)
        offsets = buffered.acked_offsets()
        if offsets:
            ck = buffered.ck
            ack = AckMsg(ck.start_offset, ck.cid, ck.topic, ck.queue_id, ck.pop_time, ck.broker_name, offsets)
            self._write_ack(ack, buffered.revive_qid, asynchronous=True)

    def _write_checkpoint(
        self, ck: PopCheckPoint, revive_qid: int, entry: PopEntry, *, asynchronous: bool
    ) -> asyncio.Future[PutResult] | None:
        env = self.env
        msg = ck_message(ck, env.revive_topic, revive_qid, env.store_host, env.now())
        fut, wait = self.writer.start_write(msg, asynchronous=asynchronous)
        env.stats.checkpoints_written += 1

        def stored(ok: bool) -> None:
            if ok:
                self.pop_offsets.complete(entry)
            else:
                log.error("checkpoint %s not stored: offset of %s stays behind it", ck.key, entry.key)

        when_done(fut, stored)
        return fut if wait else None

    def write_checkpoint(
        self, ck: PopCheckPoint, revive_qid: int, *, asynchronous: bool
    ) -> tuple[asyncio.Future[PutResult], bool]:
        """A checkpoint that belongs to no pop entry (change of invisible time)."""
        env = self.env
        msg = ck_message(ck, env.revive_topic, revive_qid, env.store_host, env.now())
        env.stats.checkpoints_written += 1
        return self.writer.start_write(msg, asynchronous=asynchronous)

    def ack(self, ack: AckMsg, revive_qid: int) -> asyncio.Future[PutResult] | None:
        """Persist an ack (single or batch), or merge it into its buffered checkpoint; returns the future to
        wait for, or None."""
        if self.buffer.add_ack(ack):
            return None
        return self._write_ack(ack, revive_qid, asynchronous=self.env.config.append_ack_async)

    def _write_ack(
        self, ack: AckMsg, revive_qid: int, *, asynchronous: bool
    ) -> asyncio.Future[PutResult] | None:
        env = self.env
        msg = ack_message(ack, env.revive_topic, revive_qid, env.store_host, env.now())
        fut, wait = self.writer.start_write(msg, asynchronous=asynchronous)
        env.stats.acks_written += 1
        return fut if wait else None
