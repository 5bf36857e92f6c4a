"""The message store: CommitLog, consume queues, index, flush, checkpoint, recovery, retention.

The store knows nothing about the network. :class:`FileMessageStore` is the real one;
:class:`MemoryMessageStore` keeps the same contract in memory.
"""

from orbitmq.store.api import (
    DispatchListener,
    DispatchRequest,
    FlushDiskType,
    GetResult,
    GetStatus,
    MessageStore,
    MessageToStore,
    PutResult,
    PutStatus,
    StoreConfig,
)
from orbitmq.store.file_store import FileMessageStore
from orbitmq.store.fileops import FileOps
from orbitmq.store.memory import MemoryMessageStore

__all__ = [
    "DispatchListener",
    "DispatchRequest",
    "FileMessageStore",
    "FileOps",
    "FlushDiskType",
    "GetResult",
    "GetStatus",
    "MemoryMessageStore",
    "MessageStore",
    "MessageToStore",
    "PutResult",
    "PutStatus",
    "StoreConfig",
]
