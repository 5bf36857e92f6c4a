"""Index: find records by key (``KEYS``) or unique id (``UNIQ_KEY``) within a time range.

RocketMQ's index file layout: a 40-byte header (begin/end store time, begin/end CommitLog offset, slot
count, entry count), a table of 4-byte hash slots holding the newest entry of each slot, then 20-byte
entries (key hash, CommitLog offset, seconds since the file's begin time, previous entry of the same slot).
Keys are ``topic#key`` and ``topic#uniqKey``. Hash collisions are expected: callers verify each hit
against the record itself. The key hash is CRC32 (the files are ours alone; no client reads them).
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Iterable

from orbitmq.store.mapped_file import MappedFile

__all__ = ["IndexFile", "IndexService"]

log = logging.getLogger("orbitmq.store")

_HEADER = struct.Struct(">qqqqii")
HEADER_SIZE = _HEADER.size  # 40
_SLOT = struct.Struct(">i")
_ENTRY = struct.Struct(">iqii")
ENTRY_SIZE = _ENTRY.size  # 20


def key_hash(key: str) -> int:
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


class IndexFile:
    def __init__(self, path: str, slots: int, max_entries: int) -> None:
        self.slots = slots
        self.max_entries = max_entries
        self.file = MappedFile(path, 0, HEADER_SIZE + slots * 4 + max_entries * ENTRY_SIZE)
        header = [int(v) for v in _HEADER.unpack_from(self.file.view, 0)]
        self.begin_ts, self.end_ts, self.begin_phy, self.end_phy, _slots, count = header
        self.count = max(count, 1)  # entry 0 is never used: 0 in a slot means "empty"

    @property
    def full(self) -> bool:
        return self.count >= self.max_entries

    def put(self, key: str, phy: int, store_ts: int) -> None:
        h = key_hash(key)
        slot_pos = HEADER_SIZE + (h % self.slots) * 4
        (prev,) = _SLOT.unpack_from(self.file.view, slot_pos)
        if self.count == 1:
            self.begin_ts, self.begin_phy = store_ts, phy
        diff = max(0, (store_ts - self.begin_ts) // 1000)
        entry_pos = HEADER_SIZE + self.slots * 4 + self.count * ENTRY_SIZE
        self.file.write(entry_pos, _ENTRY.pack(h, phy, diff, prev))
        self.file.write(slot_pos, _SLOT.pack(self.count))
        self.count += 1
        self.end_ts, self.end_phy = store_ts, phy
        self.file.write(
            0, _HEADER.pack(self.begin_ts, self.end_ts, self.begin_phy, self.end_phy, self.slots, self.count)
        )

    def query(self, key: str, max_num: int, begin_ms: int, end_ms: int) -> list[int]:
        if self.count <= 1 or self.end_ts < begin_ms or self.begin_ts > end_ms:
            return []
        h = key_hash(key)
        (idx,) = _SLOT.unpack_from(self.file.view, HEADER_SIZE + (h % self.slots) * 4)
        out: list[int] = []
        seen = 0
        while 0 < idx < self.count and len(out) < max_num and seen < self.count:
            seen += 1
            eh, phy, diff, prev = _ENTRY.unpack_from(
                self.file.view, HEADER_SIZE + self.slots * 4 + idx * ENTRY_SIZE
            )
            ts = self.begin_ts + diff * 1000
            if eh == h and begin_ms - 1000 <= ts <= end_ms:
                out.append(phy)
            if prev >= idx:
                break  # chains only go backwards; anything else is a torn entry
            idx = prev
        return out


class IndexService:
    def __init__(self, directory: str, slots: int, max_entries: int) -> None:
        self.directory = directory
        self.slots = slots
        self.max_entries = max_entries
        self.files: list[IndexFile] = []
        self.last_indexed_phy = -1
        self.dirty: set[MappedFile] = set()

    def load(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        for name in sorted(n for n in os.listdir(self.directory) if n.isdigit()):
            self.files.append(IndexFile(os.path.join(self.directory, name), self.slots, self.max_entries))
        if self.files and self.files[-1].count > 1:
            self.last_indexed_phy = self.files[-1].end_phy

    def after_recovery(self, log_end: int) -> None:
        """Records from ``log_end`` on are new: index them even if stale entries point that far."""
        self.last_indexed_phy = min(self.last_indexed_phy, log_end - 1)

    def _current(self, store_ts: int) -> IndexFile:
        if not self.files or self.files[-1].full:
            name = time.strftime("%Y%m%d%H%M%S", time.localtime(store_ts / 1000)) + f"{store_ts % 1000:03d}"
            while any(os.path.basename(f.file.path) >= name for f in self.files):
                name = str(int(name) + 1)
            self.files.append(IndexFile(os.path.join(self.directory, name), self.slots, self.max_entries))
        return self.files[-1]

    def dispatch(self, topic: str, keys: Iterable[str], phy: int, store_ts: int) -> None:
        if phy <= self.last_indexed_phy:
            return  # re-dispatch after a crash: already indexed
        self.last_indexed_phy = phy
        for key in keys:
            f = self._current(store_ts)
            f.put(f"{topic}#{key}", phy, store_ts)
            self.dirty.add(f.file)

    def query(self, topic: str, key: str, max_num: int, begin_ms: int, end_ms: int) -> list[int]:
        """CommitLog offsets of candidate records, newest first (verify each against the record)."""
        out: list[int] = []
        for f in reversed(self.files):
            if len(out) >= max_num:
                break
            out.extend(f.query(f"{topic}#{key}", max_num - len(out), begin_ms, end_ms))
        return out

    def delete_below(self, log_min: int) -> None:
        while len(self.files) > 1 and self.files[0].end_phy < log_min:
            f = self.files.pop(0)
            self.dirty.discard(f.file)
            f.file.destroy()

    def close(self) -> None:
        for f in self.files:
            f.file.close()
