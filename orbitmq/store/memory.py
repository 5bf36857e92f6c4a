"""An in-memory MessageStore: the same contract as the file store, nothing durable.

For unit tests of the broker and for an embedded server whose data may vanish with the process. Records
are encoded exactly as the file store encodes them, so pull bodies are byte-identical.
"""

from __future__ import annotations

import bisect
import logging

from orbitmq.core.clock import Clock, RealClock
from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.record import (
    TRANSACTION_MASK,
    MessageRecord,
    Prop,
    SysFlag,
    decode_record,
    encode_properties,
    offset_msg_id,
    record_store_timestamp,
    tags_code,
)
from orbitmq.store.api import (
    DispatchListener,
    DispatchRequest,
    GetResult,
    MessageToStore,
    PutResult,
    PutStatus,
    RecordFilter,
    StoreConfig,
    TagFilter,
)
from orbitmq.store.reading import read_queue

__all__ = ["MemoryMessageStore"]

log = logging.getLogger("orbitmq.store")

_NOT_DISPATCHED = (int(SysFlag.TRANSACTION_PREPARED), int(SysFlag.TRANSACTION_ROLLBACK))


class _Queue:
    def __init__(self) -> None:
        self.min_offset = 0
        self.units: list[tuple[int, int, int]] = []  # (phy, size, tag code) from min_offset on

    @property
    def max_offset(self) -> int:
        return self.min_offset + len(self.units)


class MemoryMessageStore:
    def __init__(self, config: StoreConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or RealClock()
        self._records: dict[int, bytes] = {}
        self._offsets: list[int] = []  # physical offsets in order, for range lookups
        self._end = 0
        self._queues: dict[tuple[str, int], _Queue] = {}
        self._index: dict[str, list[int]] = {}
        self._listeners: list[DispatchListener] = []
        self._running = False

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    # -- write ---------------------------------------------------------------------------------------
    async def put_message(self, msg: MessageToStore) -> PutResult:
        return await self.put_messages([msg])

    async def put_messages(self, msgs: list[MessageToStore]) -> PutResult:
        if not self._running:
            return PutResult(PutStatus.SERVICE_NOT_AVAILABLE, remark="store is not running")
        if not msgs or any((m.topic, m.queue_id) != (msgs[0].topic, msgs[0].queue_id) for m in msgs):
            return PutResult(PutStatus.MESSAGE_ILLEGAL, remark="a batch must target one topic and queue")
        now = self.clock.now_ms()
        q = self._queues.setdefault((msgs[0].topic, msgs[0].queue_id), _Queue())
        next_qo = q.max_offset
        encoded: list[tuple[bytes, MessageToStore, int, bool]] = []
        for msg in msgs:
            if len(msg.body) > self.config.max_message_size:
                return PutResult(
                    PutStatus.MESSAGE_ILLEGAL, remark=f"body of {len(msg.body)} bytes exceeds maxMessageSize"
                )
            in_queue = (msg.sys_flag & TRANSACTION_MASK) not in _NOT_DISPATCHED
            qo = next_qo if in_queue else 0
            try:
                data = msg.encode(
                    properties=encode_properties(msg.properties),
                    queue_offset=qo,
                    physical_offset=self._end + sum(len(e[0]) for e in encoded),
                    store_timestamp=now,
                    store_host=self.config.store_host,
                )
            except ProtocolError as exc:
                status = (
                    PutStatus.PROPERTIES_SIZE_EXCEEDED
                    if "properties" in str(exc)
                    else PutStatus.MESSAGE_ILLEGAL
                )
                return PutResult(status, remark=str(exc))
            encoded.append((data, msg, qo, in_queue))
            next_qo += in_queue
        first = self._end
        for data, msg, qo, in_queue in encoded:
            phy = self._end
            self._records[phy] = data
            self._offsets.append(phy)
            self._end += len(data)
            tc = msg.tags_code if msg.tags_code is not None else tags_code(msg.properties.get(Prop.TAGS))
            if in_queue:
                q.units.append((phy, len(data), tc))
            keys = msg.properties.get(Prop.KEYS, "").split()
            uniq = msg.properties.get(Prop.UNIQ_KEY)
            for key in [*keys, uniq] if uniq else keys:
                self._index.setdefault(f"{msg.topic}#{key}", []).append(phy)
            req = DispatchRequest(
                msg.topic, msg.queue_id, qo, phy, len(data), tc, now, msg.sys_flag, msg.properties
            )
            for listener in self._listeners:
                try:
                    listener(req)
                except Exception:
                    log.exception("dispatch listener failed")
        return PutResult(
            PutStatus.PUT_OK,
            physical_offset=first,
            wrote_bytes=self._end - first,
            queue_offset=encoded[0][2],
            msg_id=offset_msg_id(*self.config.store_host, first),
            store_timestamp=now,
            count=len(msgs),
        )

    def add_dispatch_listener(self, listener: DispatchListener) -> None:
        self._listeners.append(listener)

    # -- read ----------------------------------------------------------------------------------------
    def _read(self, phy: int, size: int) -> memoryview | None:
        data = self._records.get(phy)
        return memoryview(data) if data is not None and len(data) == size else None

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
        q = self._queues.get((topic, queue_id))

        def units(start: int, limit: int) -> list[tuple[int, int, int, int]]:
            assert q is not None
            first = start - q.min_offset
            return [(q.min_offset + i, *q.units[i]) for i in range(first, min(len(q.units), first + limit))]

        return read_queue(
            self.config,
            (q.min_offset, q.max_offset) if q else None,
            units,
            self._read,
            offset=offset,
            log_min=self.min_physical_offset,
            max_count=max_count,
            max_bytes=max_bytes,
            tag_filter=tag_filter,
            record_filter=record_filter,
        )

    def max_offset_in_queue(self, topic: str, queue_id: int) -> int:
        q = self._queues.get((topic, queue_id))
        return q.max_offset if q else 0

    def min_offset_in_queue(self, topic: str, queue_id: int) -> int:
        q = self._queues.get((topic, queue_id))
        return q.min_offset if q else 0

    def _store_time(self, phy: int) -> int:
        return record_store_timestamp(memoryview(self._records[phy]))

    def offset_by_time(self, topic: str, queue_id: int, timestamp_ms: int) -> int:
        q = self._queues.get((topic, queue_id))
        if q is None:
            return 0
        times = [self._store_time(phy) for phy, _s, _t in q.units]
        return q.min_offset + bisect.bisect_left(times, timestamp_ms)

    def message_store_timestamp(self, topic: str, queue_id: int, offset: int) -> int:
        q = self._queues.get((topic, queue_id))
        if q is None or not q.min_offset <= offset < q.max_offset:
            return -1
        return self._store_time(q.units[offset - q.min_offset][0])

    def earliest_message_time(self, topic: str, queue_id: int) -> int:
        return self.message_store_timestamp(topic, queue_id, self.min_offset_in_queue(topic, queue_id))

    def look_message_by_offset(self, physical_offset: int) -> MessageRecord | None:
        data = self._records.get(physical_offset)
        return decode_record(data) if data is not None else None

    def query_message(
        self, topic: str, key: str, max_num: int, begin_ms: int = 0, end_ms: int = 2**63 - 1
    ) -> list[MessageRecord]:
        out: list[MessageRecord] = []
        for phy in reversed(self._index.get(f"{topic}#{key}", [])):
            rec = self.look_message_by_offset(phy)
            if rec is not None and begin_ms <= rec.store_timestamp <= end_ms:
                out.append(rec)
            if len(out) >= max_num:
                break
        return out

    def queues(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for topic, qid in sorted(self._queues):
            out.setdefault(topic, []).append(qid)
        return out

    async def delete_topic(self, topic: str) -> None:
        for key in [k for k in self._queues if k[0] == topic]:
            del self._queues[key]

    @property
    def min_physical_offset(self) -> int:
        return self._offsets[0] if self._offsets else 0

    @property
    def max_physical_offset(self) -> int:
        return self._end

    @property
    def dispatched_offset(self) -> int:
        return self._end

    @property
    def writable(self) -> bool:
        return self._running

    async def flush(self) -> None:
        """Nothing to make durable: this store keeps no data past the process."""
