"""TransactionalMessageService: half messages, END_TRANSACTION, back-checks, op records, recovery.

- :meth:`prepare` stores a half message (``RMQ_SYS_TRANS_HALF_TOPIC`` queue 0) and adds it to the
  :class:`TransactionTable`.
- :meth:`end_transaction` settles a transaction (upstream's ``EndTransactionProcessor`` checks and
  remarks): COMMIT stores the real message once, ROLLBACK stores nothing; both settle every live half
  record of the transaction with an op record.
- The check pass (every ``transactionCheckInterval``) looks at every half record whose wait is over
  (``transactionTimeOut`` after its born time, or its ``CHECK_IMMUNITY_TIME_IN_SECONDS``): while it has
  been checked fewer than ``transactionCheckMax`` times it is put back at the end of the half queue with
  ``TRANSACTION_CHECK_TIMES`` + 1 and CHECK_TRANSACTION_STATE goes to one online producer of its group
  (``PGROUP``); after that it is moved to ``TRANS_CHECK_MAX_TIME_TOPIC``. A check with no producer online
  still counts, so a vanished producer's transaction is moved aside after the maximum number of checks.
- Op records (tag ``d``, body ``"<half offset>,..."``) are batched: written when they reach
  ``transactionOpMsgMaxSize`` bytes, every ``transactionOpBatchInterval`` ms and at stop.

Progress is upstream's: the consumer offsets of ``CID_RMQ_SYS_TRANS`` on the half queue (the oldest live
half record) and on the op queue (the oldest op record that still names one at or after it), persisted with
``consumerOffset.json``. On start the service reads the op queue, then the half queue, from those offsets
and re-adds every half record no op names. After an unclean stop the last op batch may be lost: a
recovered transaction that is committed again (a check answered COMMIT) is first looked up in the key index,
and is not stored a second time if its committed copy is already there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections import deque
from dataclasses import dataclass

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.groups import ProducerManager
from orbitmq.broker.longpoll import sleep_unless_woken
from orbitmq.broker.offsets import ConsumerOffsetManager
from orbitmq.broker.schedule import SCHEDULE_TOPIC, apply_delay_level
from orbitmq.broker.timer import TIMER_TOPIC, TimerVerdict, apply_timer
from orbitmq.broker.topics import (
    TRANS_CHECK_MAX_TIME_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    Perm,
    TopicConfigManager,
)
from orbitmq.broker.transaction.message import (
    CID_SYS_RMQ_TRANS,
    OP_REMOVE_TAG,
    check_body,
    check_times,
    committed_message,
    discarded_message,
    immunity_ms,
    op_message,
    parse_op_body,
    renewed_half,
    to_half,
)
from orbitmq.broker.transaction.state import HalfRef, TransactionTable, TxEvent, TxState
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ProtocolError
from orbitmq.core.service import Service
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import (
    TRANSACTION_MASK,
    MessageRecord,
    Prop,
    SysFlag,
    decode_record,
    offset_msg_id,
)
from orbitmq.store.api import GetStatus, MessageStore, MessageToStore, PutResult, PutStatus

__all__ = ["EndOutcome", "EndTransactionRequest", "TransactionStats", "TransactionalMessageService"]

log = logging.getLogger("orbitmq.broker.transaction")

COMMIT_TYPE = int(SysFlag.TRANSACTION_COMMIT)  # 8
ROLLBACK_TYPE = int(SysFlag.TRANSACTION_ROLLBACK)  # 12
_STORED = (PutStatus.PUT_OK, PutStatus.FLUSH_DISK_TIMEOUT)
_READ = 1024
_READ_BYTES_MAX = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EndTransactionRequest:
    """``EndTransactionRequestHeader`` (END_TRANSACTION, 37)."""

    producer_group: str
    tran_state_table_offset: int
    commit_log_offset: int
    commit_or_rollback: int  # 0 unknown, 8 commit, 12 rollback (MessageSysFlag values)
    from_transaction_check: bool = False
    msg_id: str = ""
    transaction_id: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class EndOutcome:
    """What to answer: nothing (``respond`` False: upstream answers an UNKNOWN with no response), a code
    and remark, or the result of a failed put (the handler maps it like a send)."""

    respond: bool = True
    code: int = ResponseCode.SUCCESS
    remark: str | None = None
    put: PutResult | None = None


@dataclass(slots=True)
class TransactionStats:
    """Counters the metrics exporter reads."""

    prepared: int = 0
    committed: int = 0
    rolled_back: int = 0
    discarded: int = 0
    checks_sent: int = 0
    checks_without_producer: int = 0  # back-checks counted while no producer of the group was online
    duplicates_skipped: int = 0  # recovered commits already in the log
    op_records: int = 0


def _error(remark: str) -> EndOutcome:
    return EndOutcome(code=ResponseCode.SYSTEM_ERROR, remark=remark)


class TransactionalMessageService(Service):
    def __init__(
        self,
        store: MessageStore,
        offsets: ConsumerOffsetManager,
        producers: ProducerManager,
        topics: TopicConfigManager,
        config: BrokerConfig,
        clock: Clock,
    ) -> None:
        super().__init__("TransactionalMessageService")
        self.store = store
        self.offsets = offsets
        self.producers = producers
        self.topics = topics
        self.config = config
        self.clock = clock
        self.table = TransactionTable()
        self.stats = TransactionStats()
        self._ops: list[int] = []  # half offsets settled, waiting for the next op record
        self._ops_since = 0.0  # monotonic time of the oldest pending op
        self._op_refs: deque[tuple[int, int]] = deque()  # (op queue offset, largest half offset it names)
        self._prepares_in_flight = 0
        self._half_progress = 0
        self._last_check = 0.0
        self._check_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        await self._rebuild()
        self._last_check = self.clock.monotonic()

    async def run(self) -> None:
        cfg = self.config
        while not self.stopping:
            await sleep_unless_woken(self.clock, self._wakeup, self._idle_seconds())
            if self.stopping:
                return
            try:
                if self._ops and self._ops_due():
                    await self._flush_ops()
                if (self.clock.monotonic() - self._last_check) * 1000 >= cfg.transaction_check_interval:
                    self._last_check = self.clock.monotonic()
                    await self.check()
                self._commit_progress()
            except Exception:
                log.exception("transaction service round failed; retrying")

    async def on_stop(self) -> None:
        await self._flush_ops()
        self._commit_progress()

    def _idle_seconds(self) -> float:
        cfg = self.config
        wait = cfg.transaction_check_interval - (self.clock.monotonic() - self._last_check) * 1000
        if self._ops:
            wait = min(
                wait, cfg.transaction_op_batch_interval - (self.clock.monotonic() - self._ops_since) * 1000
            )
        return max(0.001, wait / 1000)

    # -- prepare ---------------------------------------------------------------------------------------
    async def prepare(self, msg: MessageToStore) -> PutResult:
        """Store ``msg`` (a TRAN_MSG send, after the send checks) as a half message."""
        to_half(msg)
        self._prepares_in_flight += 1
        try:
            result = await self.store.put_message(msg)
        finally:
            self._prepares_in_flight -= 1
        if result.status in _STORED:
            props = msg.properties
            self.table.add(
                HalfRef(
                    queue_offset=result.queue_offset,
                    phy=result.physical_offset,
                    uniq=props.get(Prop.UNIQ_KEY, ""),
                    group=props.get(Prop.PGROUP, ""),
                    born_ms=msg.born_timestamp,
                    immunity_ms=immunity_ms(props, self.config.transaction_timeout),
                    check_times=check_times(props),
                )
            )
            self.stats.prepared += 1
        return result

    # -- end -------------------------------------------------------------------------------------------
    async def end_transaction(self, req: EndTransactionRequest) -> EndOutcome:
        """Commit or roll back (upstream's checks, codes and remarks)."""
        value = req.commit_or_rollback
        if value not in (COMMIT_TYPE, ROLLBACK_TYPE):
            log.info("end transaction of group %s at %d: state %d (unknown), nothing to do",
                     req.producer_group, req.commit_log_offset, value)  # fmt: skip
            return EndOutcome(respond=False)
        rec = self.store.look_message_by_offset(req.commit_log_offset)
        if rec is None or rec.topic != TRANS_HALF_TOPIC:
            return _error("Find prepared transaction message failed")
        if rec.properties.get(Prop.PGROUP) != req.producer_group:
            return _error("The producer group wrong")
        if rec.queue_offset != req.tran_state_table_offset:
            return _error("The transaction state table offset wrong")
        if not req.from_transaction_check and self._past_immunity(rec):
            return EndOutcome(
                code=ResponseCode.ILLEGAL_OPERATION,
                remark="commit or rollback after CHECK_IMMUNITY_TIME_IN_SECONDS: waiting for the check",
            )
        uniq = rec.properties.get(Prop.UNIQ_KEY, "")
        txn = self.table.get(uniq)
        if txn is None or txn.state is not TxState.PREPARED:
            log.info("transaction %s already settled or being settled; %s ignored",
                     uniq, "commit" if value == COMMIT_TYPE else "rollback")  # fmt: skip
            return EndOutcome()
        if value == ROLLBACK_TYPE:
            self._settled(self.table.apply(uniq, TxEvent.ROLLBACK))
            self.stats.rolled_back += 1
            return EndOutcome()
        return await self._commit(rec, uniq, any(h.recovered for h in txn.halves.values()))

    async def _commit(self, rec: MessageRecord, uniq: str, recovered: bool) -> EndOutcome:
        msg = committed_message(rec)
        if msg is None:
            return _error("the prepared message names no REAL_TOPIC/REAL_QID")
        self.table.apply(uniq, TxEvent.COMMIT)
        if recovered and self._committed_before(msg, uniq):
            self.stats.duplicates_skipped += 1
            log.info("transaction %s was committed before the restart; not stored again", uniq)
        else:
            cfg = self.config
            timed = apply_timer(
                msg, self.clock.now_ms(), cfg.timer_max_delay_sec, enabled=cfg.timer_wheel_enable
            )
            if timed.verdict in (TimerVerdict.ILLEGAL, TimerVerdict.DISABLED):
                self.table.apply(uniq, TxEvent.FAILED)
                return EndOutcome(code=ResponseCode.MESSAGE_ILLEGAL, remark=timed.remark)
            apply_delay_level(msg, cfg.delay_levels_ms, self.clock.now_ms())
            result = await self.store.put_message(msg)
            if result.status not in _STORED:
                self.table.apply(uniq, TxEvent.FAILED)
                return EndOutcome(put=result)
        self._settled(self.table.apply(uniq, TxEvent.STORED))
        self.stats.committed += 1
        return EndOutcome()

    def _past_immunity(self, rec: MessageRecord) -> bool:
        """Upstream's ``rejectCommitOrRollback``: a producer-side decision that comes after a custom
        CHECK_IMMUNITY_TIME_IN_SECONDS is refused; the check will ask for it."""
        if Prop.CHECK_IMMUNITY_TIME_IN_SECONDS not in rec.properties:
            return False
        wait = immunity_ms(rec.properties, self.config.transaction_timeout)
        return self.clock.now_ms() - rec.born_timestamp > wait

    def _committed_before(self, msg: MessageToStore, uniq: str) -> bool:
        """Whether a committed copy of this transaction is already in the log (key index)."""
        if not uniq or not self.store.config.message_index_enable:
            return False
        for topic in {msg.topic, TIMER_TOPIC, SCHEDULE_TOPIC}:
            for found in self.store.query_message(topic, uniq, 16):
                if found.sys_flag & TRANSACTION_MASK == COMMIT_TYPE and found.uniq_key == uniq:
                    return True
        return False

    # -- back-checks -----------------------------------------------------------------------------------
    async def check(self) -> None:
        """One check pass over the half records whose wait is over."""
        async with self._check_lock:
            end = self.store.max_offset_in_queue(TRANS_HALF_TOPIC, 0)
            for ref in self.table.due(self.clock.now_ms(), end):
                if self.stopping:
                    break
                txn = self.table.get(ref.uniq)
                if (
                    txn is None
                    or txn.state is not TxState.PREPARED
                    or self.table.half(ref.queue_offset) is not ref
                ):
                    continue  # settled while this pass was storing
                rec = self.store.look_message_by_offset(ref.phy)
                if rec is None:
                    log.error("half message at %d is gone (retention?); forgotten", ref.phy)
                    self.table.remove_half(ref.queue_offset)
                    self._add_ops([ref.queue_offset])
                    continue
                if ref.check_times >= self.config.transaction_check_max:
                    await self._discard(ref, rec)
                else:
                    await self._renew_and_check(ref, rec)

    async def _discard(self, ref: HalfRef, rec: MessageRecord) -> None:
        self.topics.create_topic_in_send_back(TRANS_CHECK_MAX_TIME_TOPIC, 1, int(Perm.RW))
        result = await self.store.put_message(discarded_message(rec))
        if result.status not in _STORED:
            log.warning("moving half message %d aside failed (%s); next pass", ref.phy, result.status.value)
            return
        txn = self.table.get(ref.uniq)
        if txn is not None and txn.state is TxState.PREPARED:
            self._settled(self.table.apply(ref.uniq, TxEvent.DISCARD))
        self.stats.discarded += 1
        log.warning("transaction %s of group %s checked %d times: moved to %s",
                    ref.uniq, ref.group, ref.check_times, TRANS_CHECK_MAX_TIME_TOPIC)  # fmt: skip

    async def _renew_and_check(self, ref: HalfRef, rec: MessageRecord) -> None:
        copy = renewed_half(rec)
        result = await self.store.put_message(copy)
        if result.status not in _STORED:
            log.warning("renewing half message %d failed (%s); next pass", ref.phy, result.status.value)
            return
        new = dataclasses.replace(ref, queue_offset=result.queue_offset, phy=result.physical_offset,
                                  check_times=ref.check_times + 1)  # fmt: skip
        txn = self.table.get(ref.uniq)
        if txn is None:  # settled while the copy was being stored: the copy is dead at once
            self._add_ops([result.queue_offset])
            return
        if txn.state is TxState.PREPARED:
            self.table.renew(ref, new)
        else:
            self.table.remove_half(ref.queue_offset)
            self.table.add(new)
        self._add_ops([ref.queue_offset])
        renewed = dataclasses.replace(rec, queue_offset=new.queue_offset, physical_offset=new.phy,
                                      properties=copy.properties, store_timestamp=result.store_timestamp)  # fmt: skip
        await self._send_check(new, renewed)

    async def _send_check(self, ref: HalfRef, rec: MessageRecord) -> None:
        channel = self.producers.available_channel(ref.group)
        if channel is None:
            self.stats.checks_without_producer += 1
            log.info("no producer of group %s online to check transaction %s", ref.group, ref.uniq)
            return
        host, port = self.store.config.store_host
        fields = {
            "topic": TRANS_HALF_TOPIC,
            "tranStateTableOffset": str(ref.queue_offset),
            "commitLogOffset": str(ref.phy),
            "msgId": ref.uniq,
            "transactionId": ref.uniq,
            "offsetMsgId": offset_msg_id(host, port, ref.phy),
            "brokerName": self.config.broker_name,
        }
        cmd = RemotingCommand.request(
            RequestCode.CHECK_TRANSACTION_STATE, fields, check_body(rec), oneway=True
        )
        sent = channel.send_oneway(cmd)
        if inspect.isawaitable(sent):
            await sent
        self.stats.checks_sent += 1

    # -- op records and progress -------------------------------------------------------------------------
    def _settled(self, halves: list[HalfRef]) -> None:
        self._add_ops([h.queue_offset for h in halves])

    def _add_ops(self, offsets: list[int]) -> None:
        if not offsets:
            return
        if not self._ops:
            self._ops_since = self.clock.monotonic()
        self._ops.extend(offsets)
        if len(self._ops) * 8 >= self.config.transaction_op_msg_max_size:  # ~8 bytes per "offset,"
            self.wakeup()

    def _ops_due(self) -> bool:
        cfg = self.config
        waited_ms = (self.clock.monotonic() - self._ops_since) * 1000
        return (
            waited_ms >= cfg.transaction_op_batch_interval
            or len(self._ops) * 8 >= cfg.transaction_op_msg_max_size
        )

    async def _flush_ops(self) -> None:
        if not self._ops:
            return
        ops, self._ops = self._ops, []
        host = self.store.config.store_host
        result = await self.store.put_message(op_message(ops, self.clock.now_ms(), host))
        if result.status not in _STORED:
            log.warning("writing an op record failed (%s); retrying", result.status.value)
            self._ops = ops + self._ops
            return
        self._op_refs.append((result.queue_offset, max(ops)))
        self.stats.op_records += 1

    def _commit_progress(self) -> None:
        """Move CID_RMQ_SYS_TRANS's offsets: the oldest live half record, the oldest useful op record."""
        if self._prepares_in_flight:
            return  # a half message being stored may sit below what the table shows
        half_end = self.store.max_offset_in_queue(TRANS_HALF_TOPIC, 0)
        # A settled half record needs no op to stay settled once the progress has passed it.
        progress = self.table.low_offset(half_end)
        self._half_progress = progress
        while self._op_refs and self._op_refs[0][1] < progress:
            self._op_refs.popleft()
        op_progress = (
            self._op_refs[0][0] if self._op_refs else self.store.max_offset_in_queue(TRANS_OP_HALF_TOPIC, 0)
        )
        self.offsets.commit_offset(CID_SYS_RMQ_TRANS, TRANS_HALF_TOPIC, 0, progress)
        self.offsets.commit_offset(CID_SYS_RMQ_TRANS, TRANS_OP_HALF_TOPIC, 0, op_progress)

    # -- recovery --------------------------------------------------------------------------------------
    async def _records(self, topic: str, start: int) -> list[tuple[int, MessageRecord]]:
        out: list[tuple[int, MessageRecord]] = []
        offset, end = start, self.store.max_offset_in_queue(topic, 0)
        while offset < end:
            res = self.store.get_messages(topic, 0, offset, _READ, max_bytes=_READ_BYTES_MAX)
            if res.status is not GetStatus.FOUND:
                if res.next_begin_offset > offset:
                    offset = res.next_begin_offset
                    continue
                break
            for view, qo in zip(res.buffers, res.queue_offsets, strict=True):
                try:
                    out.append((qo, decode_record(view)))
                except ProtocolError as exc:
                    log.error("%s offset %d unreadable, skipped: %s", topic, qo, exc)
            offset = res.next_begin_offset
            await asyncio.sleep(0)  # a long queue: let the broker serve meanwhile
        return out

    async def _rebuild(self) -> None:
        def start(topic: str) -> int:
            committed = self.offsets.query_offset(CID_SYS_RMQ_TRANS, topic, 0)
            low = self.store.min_offset_in_queue(topic, 0)
            return low if committed is None else max(committed, low)

        half_from = start(TRANS_HALF_TOPIC)
        removed: set[int] = set()
        for qo, rec in await self._records(TRANS_OP_HALF_TOPIC, start(TRANS_OP_HALF_TOPIC)):
            if rec.tags != OP_REMOVE_TAG:
                log.error("op record %d has tag %r, not %r: ignored", qo, rec.tags, OP_REMOVE_TAG)
                continue
            named = parse_op_body(rec.body)
            self._op_refs.append((qo, max(named, default=-1)))
            removed.update(o for o in named if o >= half_from)
        recovered = bool(getattr(self.store, "abnormal_start", False))
        for qo, rec in await self._records(TRANS_HALF_TOPIC, half_from):
            if qo in removed:
                continue
            props = rec.properties
            self.table.add(
                HalfRef(
                    queue_offset=qo,
                    phy=rec.physical_offset,
                    uniq=props.get(Prop.UNIQ_KEY, ""),
                    group=props.get(Prop.PGROUP, ""),
                    born_ms=rec.born_timestamp,
                    immunity_ms=immunity_ms(props, self.config.transaction_timeout),
                    check_times=check_times(props),
                    recovered=recovered,
                )
            )
        if len(self.table):
            log.info("transactions: %d half messages of %d transactions still undecided (from half offset %d)",
                     len(self.table), self.table.transactions, half_from)  # fmt: skip
