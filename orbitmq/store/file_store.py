"""The file-backed MessageStore: CommitLog + consume queues + index, with flush, recovery and retention.

Write path (all on the event loop, no system call): validate, assign the queue offset, encode the record,
copy it into the mapped segment. Under ASYNC_FLUSH the record is dispatched to its consume queue and the
index at once and the append returns; under SYNC_FLUSH it is dispatched, and the append returns, only
after the group commit has made it durable, so no consumer ever sees a message that a crash could take back.

Start-up: an ``abort`` file left behind means the last run did not stop cleanly. Normal recovery trusts the
checkpoint; abnormal recovery scans the CommitLog forward from the checkpoint's safe point, validating each
record (magic, size, structure, body CRC, its own offset), truncates the torn tail, and re-dispatches.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from orbitmq.core.clock import Clock, RealClock
from orbitmq.core.errors import ProtocolError, StoreError
from orbitmq.core.limits import PROPERTIES_BYTES_MAX
from orbitmq.core.metrics import LATENCY_BUCKETS_S, Histogram, Recorder
from orbitmq.core.service import ServiceGroup
from orbitmq.protocol.record import (
    TRANSACTION_MASK,
    MessageRecord,
    Prop,
    SysFlag,
    decode_record,
    encode_properties,
    offset_msg_id,
    record_size,
    record_store_timestamp,
    tags_code,
)
from orbitmq.store.api import (
    DispatchListener,
    DispatchRequest,
    FlushDiskType,
    GetResult,
    MessageToStore,
    PutResult,
    PutStatus,
    RecordFilter,
    StoreConfig,
    TagFilter,
)
from orbitmq.store.checkpoint import Checkpoint, CheckpointFile
from orbitmq.store.commitlog import CommitLog
from orbitmq.store.consumequeue import ConsumeQueue
from orbitmq.store.fileops import FileOps
from orbitmq.store.flush import CheckpointService, CleanService, GroupCommitService, PeriodicFlushService
from orbitmq.store.index import IndexService
from orbitmq.store.reading import Unit, read_queue

__all__ = ["FileMessageStore", "StoreStats"]

log = logging.getLogger("orbitmq.store")

_NOT_DISPATCHED = (int(SysFlag.TRANSACTION_PREPARED), int(SysFlag.TRANSACTION_ROLLBACK))
TOPIC_LENGTH_MAX = 0x7FFF


@dataclass(slots=True)
class StoreStats:
    """Counters that metrics read; the store only increments them."""

    put_ok: int = 0
    put_failed: int = 0
    put_bytes: int = 0
    flushes: int = 0
    flush_failures: int = 0
    recovered_records: int = 0
    truncated_bytes: int = 0


class FileMessageStore:
    def __init__(
        self, config: StoreConfig, *, clock: Clock | None = None, ops: FileOps | None = None
    ) -> None:
        self.config = config
        self.clock: Clock = clock or RealClock()
        self.ops = ops or FileOps()
        root = config.store_path_root_dir
        self.root = root
        self.commitlog = CommitLog(
            os.path.join(root, "commitlog"), config.mapped_file_size_commit_log, self.ops
        )
        self.index = IndexService(os.path.join(root, "index"), config.max_hash_slot_num, config.max_index_num)
        self.checkpoint_file = CheckpointFile(os.path.join(root, "checkpoint"), self.ops)
        self.stats = StoreStats()
        #: Seconds from the call to the result of each SYNC_FLUSH put (until durable), and of each
        #: CommitLog fsync: what metrics export as histograms.
        self.append_latency: Recorder = Histogram(LATENCY_BUCKETS_S)
        self.flush_latency: Recorder = Histogram(LATENCY_BUCKETS_S)
        self._cqs: dict[tuple[str, int], ConsumeQueue] = {}
        self._queue_offsets: dict[tuple[str, int], int] = {}
        self._pending: collections.deque[tuple[int, DispatchRequest, list[str]]] = collections.deque()
        self._dispatched = 0
        self._last_store_ts = 0
        self._listeners: list[DispatchListener] = []
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="orbitmq-store")
        self._log_lock = asyncio.Lock()
        self._cq_lock = asyncio.Lock()
        self._lock_fd: int | None = None
        self._accepting = False
        self._disk_full = False
        self._flush_failed = False
        self.abnormal_start = False
        self._sync = config.flush_disk_type is FlushDiskType.SYNC_FLUSH
        self.group_commit = GroupCommitService(self) if self._sync else None
        flusher = self.group_commit or PeriodicFlushService(self)
        self._services = ServiceGroup([flusher, CheckpointService(self), CleanService(self)])

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        self._take_lock()
        abort = os.path.join(self.root, "abort")
        self.abnormal_start = os.path.exists(abort)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_and_recover)
        await loop.run_in_executor(self._executor, self._create_abort_file, abort)
        self._accepting = True
        await self._services.start()
        log.info(
            "store opened at %s (%s recovery): CommitLog [%d, %d), %d consume queues",
            self.root,
            "abnormal" if self.abnormal_start else "normal",
            self.commitlog.min_offset,
            self.commitlog.write_pos,
            len(self._cqs),
            extra={"event": "store_opened", "recovery": "abnormal" if self.abnormal_start else "normal"},
        )

    async def stop(self) -> None:
        if self._lock_fd is None:
            return
        self._accepting = False
        await self._services.stop()
        await self.flush_commitlog()
        self._dispatch_durable()
        clean = not self._flush_failed
        await self.write_checkpoint(clean_shutdown=clean)
        loop = asyncio.get_running_loop()
        if clean:
            await loop.run_in_executor(self._executor, self._remove_abort_file)
        self.commitlog.close()
        for cq in self._cqs.values():
            cq.close()
        self.index.close()
        self._executor.shutdown(wait=True)
        os.close(self._lock_fd)
        self._lock_fd = None
        log.info(
            "store closed at %s (%s)", self.root, "clean" if clean else "flush had failed: abort file kept"
        )

    def _take_lock(self) -> None:
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"store directory {self.root} is in use by another process") from None
        self._lock_fd = fd

    def _create_abort_file(self, path: str) -> None:
        with open(path, "wb"):
            pass
        self.ops.fsync_dir(self.root)

    def _remove_abort_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, "abort"))
        self.ops.fsync_dir(self.root)

    # -- recovery (runs in a worker thread before anything else touches the store) --------------------
    def _load_and_recover(self) -> None:
        self.commitlog.load()
        self._load_consume_queues()
        self.index.load()
        cp = self.checkpoint_file.load()
        if not self.abnormal_start and cp is not None and cp.confirm_phy_offset >= self.commitlog.min_offset:
            end = cp.confirm_phy_offset
            self.commitlog.write_pos = end
            self._dispatched = end
        else:
            start = cp.dispatched_offset if cp is not None else self.commitlog.min_offset
            if self.commitlog.segment_at(start) is None:
                start = self.commitlog.min_offset
            self._dispatched = start
            for phy, size, rec in self.commitlog.scan(start, self.config.check_crc_on_recover):
                self._dispatch(self._request_of(rec, phy, size), self._keys_of(rec))
                self.stats.recovered_records += 1
            end = self.commitlog.write_pos
        last = self.commitlog.segments[-1].end if self.commitlog.segments else 0
        self.stats.truncated_bytes = max(0, last - end) if self.abnormal_start else 0
        self.commitlog.truncate_after(end)
        self._dispatched = end
        for cq in self._cqs.values():
            cq.truncate_beyond(end)
            cq.correct_min_offset(self.commitlog.min_offset)
            self._queue_offsets[(cq.topic, cq.queue_id)] = cq.max_offset
        self.index.after_recovery(end)
        self.commitlog.flushed_pos = self.commitlog.min_offset
        self.commitlog.flush_blocking(end)
        self.commitlog.flushed_pos = end
        if self.abnormal_start:
            log.warning(
                "abnormal recovery: re-dispatched %d records, CommitLog ends at %d",
                self.stats.recovered_records,
                end,
                extra={"event": "recovery", "records": self.stats.recovered_records},
            )

    def _load_consume_queues(self) -> None:
        base = os.path.join(self.root, "consumequeue")
        os.makedirs(base, exist_ok=True)
        for topic in sorted(os.listdir(base)):
            tdir = os.path.join(base, topic)
            for qid in sorted(os.listdir(tdir)):
                if not qid.lstrip("-").isdigit():
                    continue
                cq = ConsumeQueue(
                    os.path.join(tdir, qid), topic, int(qid), self.config.mapped_file_size_consume_queue
                )
                cq.load()
                self._cqs[(topic, int(qid))] = cq

    # -- write ---------------------------------------------------------------------------------------
    async def put_message(self, msg: MessageToStore) -> PutResult:
        return await self.put_messages([msg])

    async def put_messages(self, msgs: list[MessageToStore]) -> PutResult:
        if self.group_commit is None:
            return self._append(msgs)  # ASYNC_FLUSH: a memory copy, not timed (it would cost ~10%)
        started = self.clock.monotonic()
        result = self._append(msgs)
        if result.ok:
            await self._wait_durable(result, self.group_commit)
        self.append_latency.observe(self.clock.monotonic() - started)
        return result

    async def _wait_durable(self, result: PutResult, group_commit: GroupCommitService) -> None:
        end = result.physical_offset + result.wrote_bytes
        try:
            durable = await asyncio.wait_for(
                asyncio.shield(group_commit.request(end)), self.config.sync_flush_timeout_ms / 1000
            )
        except TimeoutError:
            result.status = PutStatus.FLUSH_DISK_TIMEOUT
            return
        if not durable:
            result.status = PutStatus.FLUSH_DISK_FAILED
            result.remark = "fsync of the CommitLog failed; the store refuses writes until restarted"

    def _refusal(self) -> PutResult | None:
        if not self._accepting:
            return PutResult(PutStatus.SERVICE_NOT_AVAILABLE, remark="store is not running")
        if self._flush_failed:
            return PutResult(
                PutStatus.SERVICE_NOT_AVAILABLE, remark="a CommitLog flush failed; writes refused"
            )
        if self._disk_full:
            ratio = self.config.disk_max_used_space_ratio
            return PutResult(PutStatus.SERVICE_NOT_AVAILABLE, remark=f"disk full: more than {ratio}% used")
        return None

    def _append(self, msgs: list[MessageToStore]) -> PutResult:
        refusal = self._refusal()
        if refusal is not None:
            self.stats.put_failed += 1
            return refusal
        if not msgs:
            return PutResult(PutStatus.MESSAGE_ILLEGAL, remark="no message")
        prepared: list[tuple[MessageToStore, bytes, int, int]] = []  # (msg, properties, queue offset, size)
        now = self.clock.now_ms()
        key = (msgs[0].topic, msgs[0].queue_id)
        next_qo = self._queue_offsets.get(key, 0)
        topic_len = len(key[0].encode())
        for msg in msgs:
            if (msg.topic, msg.queue_id) != key:
                return PutResult(PutStatus.MESSAGE_ILLEGAL, remark="a batch must target one topic and queue")
            if len(msg.body) > self.config.max_message_size:
                return PutResult(
                    PutStatus.MESSAGE_ILLEGAL, remark=f"body of {len(msg.body)} bytes exceeds maxMessageSize"
                )
            props_b = encode_properties(msg.properties).encode()
            if len(props_b) > PROPERTIES_BYTES_MAX:
                return PutResult(
                    PutStatus.PROPERTIES_SIZE_EXCEEDED, remark=f"properties of {len(props_b)} bytes"
                )
            if topic_len > TOPIC_LENGTH_MAX:
                return PutResult(PutStatus.MESSAGE_ILLEGAL, remark=f"topic of {topic_len} bytes")
            size = record_size(len(msg.body), topic_len, len(props_b), v2=topic_len > 127)
            if size + 8 > self.config.mapped_file_size_commit_log:
                return PutResult(PutStatus.MESSAGE_ILLEGAL, remark="record larger than a CommitLog segment")
            in_queue = (msg.sys_flag & TRANSACTION_MASK) not in _NOT_DISPATCHED
            prepared.append((msg, props_b, next_qo if in_queue else 0, size))
            next_qo += in_queue
        first_phy = -1
        for msg, props_b, qo, size in prepared:
            phy = self.commitlog.reserve(size)
            data = msg.encode(
                properties=props_b,
                queue_offset=qo,
                physical_offset=phy,
                store_timestamp=now,
                store_host=self.config.store_host,
            )
            self.commitlog.write(phy, data)
            if first_phy < 0:
                first_phy = phy
            tc = msg.tags_code if msg.tags_code is not None else tags_code(msg.properties.get(Prop.TAGS))
            req = DispatchRequest(
                msg.topic, msg.queue_id, qo, phy, len(data), tc, now, msg.sys_flag, msg.properties
            )
            keys = _keys(msg.properties)
            if self._sync:
                self._pending.append((phy + len(data), req, keys))
            else:
                self._dispatch(req, keys)
        self._queue_offsets[key] = next_qo
        self._last_store_ts = now
        self.stats.put_ok += len(msgs)
        self.stats.put_bytes += self.commitlog.write_pos - first_phy
        return PutResult(
            PutStatus.PUT_OK,
            physical_offset=first_phy,
            wrote_bytes=self.commitlog.write_pos - first_phy,
            queue_offset=prepared[0][2],
            msg_id=offset_msg_id(*self.config.store_host, first_phy),
            store_timestamp=now,
            count=len(msgs),
        )

    # -- dispatch (the reput step: consume queues and index are derived from the log) -----------------
    def _dispatch(self, req: DispatchRequest, keys: list[str]) -> None:
        if (req.sys_flag & TRANSACTION_MASK) not in _NOT_DISPATCHED:
            self._cq(req.topic, req.queue_id).put(
                req.queue_offset, req.physical_offset, req.size, req.tags_code
            )
        if self.config.message_index_enable and keys:
            self.index.dispatch(req.topic, keys, req.physical_offset, req.store_timestamp)
        self._dispatched = req.physical_offset + req.size
        for listener in self._listeners:
            try:
                listener(req)
            except Exception:
                log.exception("dispatch listener failed")

    def _dispatch_durable(self) -> None:
        flushed = self.commitlog.flushed_pos
        while self._pending and self._pending[0][0] <= flushed:
            _end, req, keys = self._pending.popleft()
            self._dispatch(req, keys)

    def _cq(self, topic: str, queue_id: int) -> ConsumeQueue:
        cq = self._cqs.get((topic, queue_id))
        if cq is None:
            directory = os.path.join(self.root, "consumequeue", topic, str(queue_id))
            os.makedirs(directory, exist_ok=True)
            cq = ConsumeQueue(directory, topic, queue_id, self.config.mapped_file_size_consume_queue)
            self._cqs[(topic, queue_id)] = cq
        return cq

    @staticmethod
    def _request_of(rec: MessageRecord, phy: int, size: int) -> DispatchRequest:
        return DispatchRequest(
            rec.topic,
            rec.queue_id,
            rec.queue_offset,
            phy,
            size,
            tags_code(rec.tags),
            rec.store_timestamp,
            rec.sys_flag,
            rec.properties,
        )

    @staticmethod
    def _keys_of(rec: MessageRecord) -> list[str]:
        return _keys(rec.properties)

    def add_dispatch_listener(self, listener: DispatchListener) -> None:
        self._listeners.append(listener)

    # -- read ----------------------------------------------------------------------------------------
    def get_messages(
        self,
        topic: str,
        queue_id: int,
        offset: int,
        max_count: int,
        *,
        max_bytes: int | None = None,
        tag_filter: TagFilter | None = None,
        record_filter: RecordFilter | None = None,
    ) -> GetResult:
        cq = self._cqs.get((topic, queue_id))
        return read_queue(
            self.config,
            (cq.min_offset, cq.max_offset) if cq else None,
            cq.units if cq else _no_units,
            self.commitlog.read,
            offset=offset,
            log_min=self.commitlog.min_offset,
            max_count=max_count,
            max_bytes=max_bytes,
            tag_filter=tag_filter,
            record_filter=record_filter,
        )

    def max_offset_in_queue(self, topic: str, queue_id: int) -> int:
        cq = self._cqs.get((topic, queue_id))
        return cq.max_offset if cq else 0

    def min_offset_in_queue(self, topic: str, queue_id: int) -> int:
        cq = self._cqs.get((topic, queue_id))
        return cq.min_offset if cq else 0

    def _store_time_at(self, phy: int) -> int | None:
        view = self.commitlog.read_record(phy)
        return record_store_timestamp(view) if view is not None else None

    def offset_by_time(self, topic: str, queue_id: int, timestamp_ms: int) -> int:
        cq = self._cqs.get((topic, queue_id))
        return cq.offset_by_time(timestamp_ms, self._store_time_at) if cq else 0

    def message_store_timestamp(self, topic: str, queue_id: int, offset: int) -> int:
        cq = self._cqs.get((topic, queue_id))
        unit = cq.unit(offset) if cq else None
        ts = self._store_time_at(unit[0]) if unit else None
        return ts if ts is not None else -1

    def earliest_message_time(self, topic: str, queue_id: int) -> int:
        return self.message_store_timestamp(topic, queue_id, self.min_offset_in_queue(topic, queue_id))

    def look_message_by_offset(self, physical_offset: int) -> MessageRecord | None:
        if physical_offset >= self._dispatched:
            return None
        view = self.commitlog.read_record(physical_offset)
        if view is None:
            return None
        try:
            return decode_record(view)
        except ProtocolError:
            return None

    def query_message(
        self, topic: str, key: str, max_num: int, begin_ms: int = 0, end_ms: int = 2**63 - 1
    ) -> list[MessageRecord]:
        out: list[MessageRecord] = []
        for phy in self.index.query(topic, key, max_num * 4, begin_ms, end_ms):
            rec = self.look_message_by_offset(phy)
            matches = rec is not None and rec.topic == topic and (key in rec.keys or rec.uniq_key == key)
            if rec is not None and matches and all(r.physical_offset != phy for r in out):
                out.append(rec)
            if len(out) >= max_num:
                break
        return out

    def queues(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for topic, qid in sorted(self._cqs):
            out.setdefault(topic, []).append(qid)
        return out

    async def delete_topic(self, topic: str) -> None:
        async with self._cq_lock:
            for key in [k for k in self._cqs if k[0] == topic]:
                self._cqs.pop(key).destroy()
                self._queue_offsets.pop(key, None)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(self.root, "consumequeue", topic))

    # -- positions -----------------------------------------------------------------------------------
    @property
    def min_physical_offset(self) -> int:
        return self.commitlog.min_offset

    @property
    def max_physical_offset(self) -> int:
        return self.commitlog.write_pos

    @property
    def dispatched_offset(self) -> int:
        return self._dispatched

    @property
    def writable(self) -> bool:
        return self._refusal() is None

    # -- durability, checkpoint, housekeeping (called by the services in flush.py) ---------------------
    async def flush_commitlog(self) -> bool:
        """Make the CommitLog durable up to its current end; False (and writes refused) if fsync failed."""
        target = self.commitlog.write_pos
        if target <= self.commitlog.flushed_pos:
            return not self._flush_failed
        async with self._log_lock:
            started = self.clock.monotonic()
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.commitlog.flush_blocking, target
                )
            except OSError:
                self._flush_failed = True
                self.stats.flush_failures += 1
                log.exception(
                    "CommitLog flush failed; refusing writes until restart (data may not be durable)"
                )
                return False
            self.flush_latency.observe(self.clock.monotonic() - started)
        self.commitlog.flushed_pos = max(self.commitlog.flushed_pos, target)
        self.stats.flushes += 1
        if self._sync:
            self._dispatch_durable()
        return True

    async def flush(self) -> None:
        await self.flush_commitlog()
        await self.write_checkpoint()

    async def write_checkpoint(self, *, clean_shutdown: bool = False) -> None:
        """Flush consume queues and index, then record the offset up to which they are durable."""
        safe = min(self._dispatched, self.commitlog.flushed_pos)
        cp = Checkpoint(
            physic_msg_timestamp=self._last_store_ts,
            logics_msg_timestamp=self._last_store_ts,
            index_msg_timestamp=self._last_store_ts,
            master_flushed_offset=self.commitlog.flushed_pos,
            confirm_phy_offset=self.commitlog.write_pos if clean_shutdown else safe,
            dispatched_offset=self.commitlog.write_pos if clean_shutdown else safe,
        )
        async with self._cq_lock:
            files = [f for cq in self._cqs.values() for f in cq.dirty] + list(self.index.dirty)
            for cq in self._cqs.values():
                cq.dirty = set()
            self.index.dirty = set()

            def work() -> None:
                for f in files:
                    if not f.closed:
                        self.ops.fdatasync(f.fd)
                self.checkpoint_file.write(cp)

            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, work)
            except OSError:
                log.exception("consume queue / checkpoint flush failed; retrying at the next interval")
                for cq in self._cqs.values():
                    cq.dirty.update(f for f in files if f in cq.files)

    async def check_disk_space(self) -> None:
        ratio = await asyncio.get_running_loop().run_in_executor(
            self._executor, self.ops.disk_used_ratio, self.root
        )
        full = ratio * 100 > self.config.disk_max_used_space_ratio
        if full != self._disk_full:
            log.warning(
                "disk %s: %.1f%% used (diskMaxUsedSpaceRatio %d%%)",
                "full" if full else "has room again",
                ratio * 100,
                self.config.disk_max_used_space_ratio,
            )
        self._disk_full = full

    async def delete_expired_files(self) -> int:
        reserved_s = self.config.file_reserved_time_h * 3600
        async with self._log_lock:
            deleted = self.commitlog.delete_expired(self.clock.now_ms() / 1000, reserved_s, lambda _m: None)
        if deleted:
            async with self._cq_lock:
                for cq in self._cqs.values():
                    cq.correct_min_offset(self.commitlog.min_offset)
                self.index.delete_below(self.commitlog.min_offset)
        return deleted


def _keys(props: dict[str, str]) -> list[str]:
    keys = props.get(Prop.KEYS, "").split()
    uniq = props.get(Prop.UNIQ_KEY)
    if uniq:
        keys.append(uniq)
    return keys


def _no_units(_start: int, _limit: int) -> list[Unit]:
    return []
