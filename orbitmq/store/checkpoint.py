"""The store checkpoint: one small file saying how far the derived data (consume queues, index) is durable.

Layout (big-endian longs), RocketMQ's ``StoreCheckpoint`` plus two fields of ours and a CRC:

    0   physicMsgTimestamp     store time of the last flushed CommitLog record
    8   logicsMsgTimestamp     store time of the last record whose consume-queue unit is flushed
    16  indexMsgTimestamp      store time of the last record whose index entries are flushed
    24  masterFlushedOffset    CommitLog bytes known durable
    32  confirmPhyOffset       end of the CommitLog at the last clean shutdown (trusted by normal recovery)
    40  dispatchedOffset       consume queues and index are durable for every record before this offset:
                               abnormal recovery re-dispatches from here
    48  crc32 of bytes 0..47   a torn checkpoint is ignored (recovery then scans from the first segment)
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

from orbitmq.store.fileops import FileOps

__all__ = ["Checkpoint", "CheckpointFile"]

_LAYOUT = struct.Struct(">qqqqqqI")


@dataclass(slots=True)
class Checkpoint:
    physic_msg_timestamp: int = 0
    logics_msg_timestamp: int = 0
    index_msg_timestamp: int = 0
    master_flushed_offset: int = 0
    confirm_phy_offset: int = 0
    dispatched_offset: int = 0


class CheckpointFile:
    def __init__(self, path: str, ops: FileOps) -> None:
        self.path = path
        self.ops = ops

    def load(self) -> Checkpoint | None:
        """The stored checkpoint, or None when the file is missing or torn."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read(_LAYOUT.size)
        except FileNotFoundError:
            return None
        if len(raw) < _LAYOUT.size:
            return None
        *values, crc = _LAYOUT.unpack(raw)
        if zlib.crc32(raw[:48]) != crc:
            return None
        return Checkpoint(*values)

    def write(self, cp: Checkpoint) -> None:
        """Blocking: write and fsync. One write of 52 bytes at offset 0 of a one-page file."""
        body = struct.pack(
            ">qqqqqq",
            cp.physic_msg_timestamp,
            cp.logics_msg_timestamp,
            cp.index_msg_timestamp,
            cp.master_flushed_offset,
            cp.confirm_phy_offset,
            cp.dispatched_offset,
        )
        data = body + struct.pack(">I", zlib.crc32(body))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
            self.ops.fsync(fd)
        finally:
            os.close(fd)
