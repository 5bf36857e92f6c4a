"""The store contract: what the broker may ask of a message store, file-backed or in memory.

Every implementation passes the one contract suite in ``tests/integration/store/test_contract.py``.
Expected outcomes (queue empty, offset moved, disk full) are statuses in results, not exceptions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from orbitmq.protocol.record import MessageRecord, encode_record

__all__ = [
    "DispatchListener",
    "DispatchRequest",
    "FlushDiskType",
    "GetResult",
    "GetStatus",
    "MessageStore",
    "MessageToStore",
    "PutResult",
    "PutStatus",
    "RecordFilter",
    "StoreConfig",
    "TagFilter",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class FlushDiskType(enum.Enum):
    ASYNC_FLUSH = "ASYNC_FLUSH"
    SYNC_FLUSH = "SYNC_FLUSH"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Store configuration; each field names the RocketMQ ``MessageStoreConfig`` property it mirrors."""

    store_path_root_dir: str  # storePathRootDir
    mapped_file_size_commit_log: int = 1 * GiB  # mappedFileSizeCommitLog
    mapped_file_size_consume_queue: int = 300_000 * 20  # mappedFileSizeConsumeQueue
    flush_disk_type: FlushDiskType = FlushDiskType.ASYNC_FLUSH  # flushDiskType
    flush_interval_commit_log_ms: int = 500  # flushIntervalCommitLog
    flush_commit_log_least_pages: int = 4  # flushCommitLogLeastPages
    flush_commit_log_thorough_interval_ms: int = 10_000  # flushCommitLogThoroughInterval
    flush_interval_consume_queue_ms: int = 1000  # flushIntervalConsumeQueue
    sync_flush_timeout_ms: int = 5000  # syncFlushTimeout
    file_reserved_time_h: float = 72  # fileReservedTime (hours)
    clean_resource_interval_ms: int = 10_000  # cleanResourceInterval
    disk_max_used_space_ratio: int = 90  # diskMaxUsedSpaceRatio (percent; see docs/storage.md)
    max_message_size: int = 4 * MiB  # maxMessageSize
    max_hash_slot_num: int = 5_000_000  # maxHashSlotNum
    max_index_num: int = 20_000_000  # maxIndexNum
    message_index_enable: bool = True  # messageIndexEnable
    check_crc_on_recover: bool = True  # checkCRCOnRecover
    max_transfer_count_on_message_in_memory: int = 32  # maxTransferCountOnMessageInMemory
    max_transfer_bytes_on_message_in_memory: int = 256 * KiB  # maxTransferBytesOnMessageInMemory
    max_filter_message_count: int = 16_000 // 20  # maxFilterMessageSize / 20: units scanned when filtering
    store_host: tuple[str, int] = ("127.0.0.1", 10911)  # brokerIP1 + listenPort, written into records


@dataclass(slots=True)
class MessageToStore:
    """A message ready to be appended (RocketMQ's ``MessageExtBrokerInner``)."""

    topic: str
    queue_id: int
    body: bytes
    properties: dict[str, str] = field(default_factory=dict)
    flag: int = 0
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: tuple[str, int] = ("127.0.0.1", 0)
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0
    #: Consume-queue tag code; ``None`` means the Java hash of the TAGS property. Delay-level queues put
    #: the delivery timestamp here.
    tags_code: int | None = None

    @classmethod
    def copy_of(
        cls,
        rec: MessageRecord,
        *,
        topic: str,
        queue_id: int,
        properties: dict[str, str],
        reconsume_times: int | None = None,
        prepared_transaction_offset: int | None = None,
    ) -> MessageToStore:
        """A stored record put again elsewhere (retry, dead letter, delayed delivery): body, flags and
        born fields kept; topic, queue and properties replaced."""
        return cls(
            topic=topic,
            queue_id=queue_id,
            body=rec.body,
            properties=properties,
            flag=rec.flag,
            sys_flag=rec.sys_flag,
            born_timestamp=rec.born_timestamp,
            born_host=rec.born_host,
            reconsume_times=rec.reconsume_times if reconsume_times is None else reconsume_times,
            prepared_transaction_offset=(
                rec.prepared_transaction_offset
                if prepared_transaction_offset is None
                else prepared_transaction_offset
            ),
        )

    def encode(
        self,
        *,
        properties: bytes | str,
        queue_offset: int,
        physical_offset: int,
        store_timestamp: int,
        store_host: tuple[str, int],
    ) -> bytes:
        """This message as a stored record, with the offsets and store fields the store assigned."""
        return encode_record(
            topic=self.topic,
            body=self.body,
            properties=properties,
            queue_id=self.queue_id,
            flag=self.flag,
            queue_offset=queue_offset,
            physical_offset=physical_offset,
            sys_flag=self.sys_flag,
            born_timestamp=self.born_timestamp,
            born_host=self.born_host,
            store_timestamp=store_timestamp,
            store_host=store_host,
            reconsume_times=self.reconsume_times,
            prepared_transaction_offset=self.prepared_transaction_offset,
        )


class PutStatus(enum.Enum):
    PUT_OK = "PUT_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_DISK_FAILED = "FLUSH_DISK_FAILED"
    SERVICE_NOT_AVAILABLE = "SERVICE_NOT_AVAILABLE"  # stopped, disk full, or refusing writes
    MESSAGE_ILLEGAL = "MESSAGE_ILLEGAL"
    PROPERTIES_SIZE_EXCEEDED = "PROPERTIES_SIZE_EXCEEDED"


@dataclass(slots=True)
class PutResult:
    status: PutStatus
    physical_offset: int = -1
    wrote_bytes: int = 0
    queue_offset: int = -1
    msg_id: str = ""  # offset message id of the (first) record
    store_timestamp: int = 0
    count: int = 0
    remark: str = ""

    @property
    def ok(self) -> bool:
        return self.status is PutStatus.PUT_OK


class GetStatus(enum.Enum):
    FOUND = "FOUND"
    NO_MATCHED_MESSAGE = "NO_MATCHED_MESSAGE"
    MESSAGE_WAS_REMOVING = "MESSAGE_WAS_REMOVING"
    OFFSET_FOUND_NULL = "OFFSET_FOUND_NULL"
    OFFSET_OVERFLOW_BADLY = "OFFSET_OVERFLOW_BADLY"
    OFFSET_OVERFLOW_ONE = "OFFSET_OVERFLOW_ONE"
    OFFSET_TOO_SMALL = "OFFSET_TOO_SMALL"
    NO_MATCHED_LOGIC_QUEUE = "NO_MATCHED_LOGIC_QUEUE"
    NO_MESSAGE_IN_QUEUE = "NO_MESSAGE_IN_QUEUE"


@dataclass(slots=True)
class GetResult:
    status: GetStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    #: Raw records, each a memoryview slice of the log: send them as a pull body without re-encoding.
    buffers: list[memoryview] = field(default_factory=list)
    #: Queue offset of each returned record.
    queue_offsets: list[int] = field(default_factory=list)

    @property
    def message_count(self) -> int:
        return len(self.buffers)

    @property
    def total_size(self) -> int:
        return sum(len(b) for b in self.buffers)


@dataclass(slots=True)
class DispatchRequest:
    """A record that reached the consume queue: what long polling and listeners need to know of it.

    Treat it as read-only; it is not frozen only because frozen dataclasses are slow to build on the hot path.
    """

    topic: str
    queue_id: int
    queue_offset: int
    physical_offset: int
    size: int
    tags_code: int
    store_timestamp: int
    sys_flag: int
    properties: dict[str, str]


#: Consume-queue level filter on the tag code (cheap: no record read).
TagFilter = Callable[[int], bool]
#: Record level filter on the decoded properties (exact tag, SQL92).
RecordFilter = Callable[[dict[str, str]], bool]
DispatchListener = Callable[[DispatchRequest], None]


class MessageStore(Protocol):
    config: StoreConfig

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    # -- write ----------------------------------------------------------------------------------------
    async def put_message(self, msg: MessageToStore) -> PutResult: ...

    async def put_messages(self, msgs: list[MessageToStore]) -> PutResult:
        """Append several messages of one topic and queue with consecutive queue offsets, atomically."""
        ...

    # -- read -----------------------------------------------------------------------------------------
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
    ) -> GetResult: ...

    def max_offset_in_queue(self, topic: str, queue_id: int) -> int: ...

    def min_offset_in_queue(self, topic: str, queue_id: int) -> int: ...

    def offset_by_time(self, topic: str, queue_id: int, timestamp_ms: int) -> int:
        """The first queue offset whose store time is ≥ ``timestamp_ms`` (max offset if none)."""
        ...

    def earliest_message_time(self, topic: str, queue_id: int) -> int: ...

    def message_store_timestamp(self, topic: str, queue_id: int, offset: int) -> int: ...

    def look_message_by_offset(self, physical_offset: int) -> MessageRecord | None: ...

    def query_message(
        self, topic: str, key: str, max_num: int, begin_ms: int = 0, end_ms: int = 2**63 - 1
    ) -> list[MessageRecord]:
        """Messages of ``topic`` whose KEYS contain ``key`` or whose UNIQ_KEY is ``key``, newest first."""
        ...

    def queues(self) -> dict[str, list[int]]:
        """Topic → queue ids that have a consume queue."""
        ...

    async def delete_topic(self, topic: str) -> None: ...

    # -- positions and housekeeping ------------------------------------------------------------------
    @property
    def min_physical_offset(self) -> int: ...

    @property
    def max_physical_offset(self) -> int: ...

    @property
    def dispatched_offset(self) -> int: ...

    @property
    def writable(self) -> bool: ...

    def add_dispatch_listener(self, listener: DispatchListener) -> None: ...

    async def flush(self) -> None:
        """Make everything appended so far durable and write the checkpoint."""
        ...
