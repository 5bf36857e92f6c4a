"""ConsumeQueue: per topic and queue id, the index of that queue's records in the CommitLog.

A unit is 20 bytes: CommitLog offset (8), record size (4), tag code (8). Logical offset n lives at byte
n * 20. Files are fixed size and named, like RocketMQ's, by their first byte position. Units are only ever
appended in order; a unit for an offset already present is ignored, which makes re-dispatch after a crash
idempotent.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterator

from orbitmq.core.errors import StoreError
from orbitmq.store.mapped_file import MappedFile, offset_file_name

__all__ = ["UNIT_SIZE", "ConsumeQueue"]

log = logging.getLogger("orbitmq.store")

UNIT_SIZE = 20
_UNIT = struct.Struct(">qiq")


class ConsumeQueue:
    def __init__(self, directory: str, topic: str, queue_id: int, file_size: int) -> None:
        if file_size % UNIT_SIZE or file_size < UNIT_SIZE:
            raise StoreError(f"mappedFileSizeConsumeQueue must be a multiple of {UNIT_SIZE}, got {file_size}")
        self.directory = directory
        self.topic = topic
        self.queue_id = queue_id
        self.file_size = file_size
        self.files: list[MappedFile] = []
        self.min_offset = 0  # first logical offset still readable (moves with retention)
        self.max_offset = 0  # next logical offset to be written
        self.dirty: set[MappedFile] = set()

    @property
    def units_per_file(self) -> int:
        return self.file_size // UNIT_SIZE

    # -- files ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Map existing files and find the end: the first unit that is zero (never written)."""
        names = sorted(n for n in os.listdir(self.directory) if n.isdigit() and len(n) == 20)
        for name in names:
            self.files.append(self._map(int(name)))
        if not self.files:
            return
        self.min_offset = self.files[0].start // UNIT_SIZE
        last = self.files[-1]
        n = 0
        for phy, size, _tag in _UNIT.iter_unpack(last.view):
            if phy < 0 or size <= 0:
                break
            n += 1
        self.max_offset = last.start // UNIT_SIZE + n
        first = self.files[0]
        for _phy, size, _tag in _UNIT.iter_unpack(first.view):
            if size > 0:
                break
            self.min_offset += 1  # leading blanks left by retention's min-offset correction
        self.min_offset = min(self.min_offset, self.max_offset)

    def _map(self, start_byte: int) -> MappedFile:
        return MappedFile(
            os.path.join(self.directory, offset_file_name(start_byte)), start_byte, self.file_size
        )

    def _file_for(self, offset: int) -> MappedFile | None:
        byte = offset * UNIT_SIZE
        if not self.files or byte < self.files[0].start:
            return None
        i = (byte - self.files[0].start) // self.file_size
        return self.files[i] if i < len(self.files) else None

    def close(self) -> None:
        for f in self.files:
            f.close()

    def destroy(self) -> None:
        for f in self.files:
            f.destroy()
        self.files.clear()
        self.min_offset = self.max_offset = 0
        self.dirty.clear()

    # -- write ---------------------------------------------------------------------------------------
    def put(self, offset: int, phy: int, size: int, tag_code: int) -> bool:
        """Write the unit for logical ``offset``; False (and nothing written) if it is already there."""
        if offset < self.max_offset:
            return False
        if offset > self.max_offset:
            raise StoreError(
                f"consume queue {self.topic}/{self.queue_id} would get a hole: offset {offset}, max {self.max_offset}"
            )
        if not self.files:
            self.min_offset = offset
            start = (offset // self.units_per_file) * self.file_size
            self.files.append(self._map(start))
        f = self._file_for(offset)
        if f is None:
            f = self._map(self.files[-1].end)
            self.files.append(f)
        f.write(offset * UNIT_SIZE - f.start, _UNIT.pack(phy, size, tag_code))
        self.dirty.add(f)
        self.max_offset = offset + 1
        return True

    # -- read ----------------------------------------------------------------------------------------
    def unit(self, offset: int) -> tuple[int, int, int] | None:
        if offset < self.min_offset or offset >= self.max_offset:
            return None
        f = self._file_for(offset)
        if f is None:
            return None
        phy, size, tag = _UNIT.unpack_from(f.view, offset * UNIT_SIZE - f.start)
        return int(phy), int(size), int(tag)

    def units(self, start: int, limit: int) -> Iterator[tuple[int, int, int, int]]:
        """``(offset, phy, size, tag_code)`` for up to ``limit`` units from ``start``."""
        offset = max(start, self.min_offset)
        end = min(self.max_offset, offset + limit)
        while offset < end:
            f = self._file_for(offset)
            if f is None:
                return
            pos = offset * UNIT_SIZE - f.start
            stop = min(end, (f.end // UNIT_SIZE))
            for phy, size, tag in _UNIT.iter_unpack(f.view[pos : (stop * UNIT_SIZE) - f.start]):
                yield offset, phy, size, tag
                offset += 1

    def offset_by_time(self, timestamp_ms: int, store_time_of: Callable[[int], int | None]) -> int:
        """First logical offset whose record was stored at or after ``timestamp_ms``.

        Binary search over store timestamps read from the CommitLog; with many records sharing one time,
        lands on the first of them. Past the newest record: ``max_offset``.
        """
        lo, hi = self.min_offset, self.max_offset
        while lo < hi:
            mid = (lo + hi) // 2
            unit = self.unit(mid)
            ts = store_time_of(unit[0]) if unit else None
            if ts is None or ts < timestamp_ms:
                lo = mid + 1
            else:
                hi = mid
        return lo

    # -- recovery and retention ----------------------------------------------------------------------
    def truncate_beyond(self, log_end: int) -> None:
        """Drop units that point at CommitLog bytes at or after ``log_end`` (lost in a crash)."""
        new_max = self.max_offset
        while new_max > self.min_offset:
            unit = self.unit(new_max - 1)
            if unit is not None and unit[0] + unit[1] <= log_end:
                break
            new_max -= 1
        if new_max == self.max_offset:
            return
        log.warning(
            "consume queue %s/%d truncated from %d to %d", self.topic, self.queue_id, self.max_offset, new_max
        )
        self.max_offset = new_max
        keep_byte = new_max * UNIT_SIZE
        while self.files and self.files[-1].start >= keep_byte and len(self.files) > 1:
            self.files.pop().destroy()
        if self.files:
            last = self.files[-1]
            last.truncate_after(max(0, keep_byte - last.start))

    def correct_min_offset(self, log_min: int) -> None:
        """After retention: delete files wholly below the CommitLog minimum and move ``min_offset`` up."""
        while len(self.files) > 1:
            last_unit_of_first = self.files[0].end // UNIT_SIZE - 1
            unit = self.unit(last_unit_of_first) if last_unit_of_first >= self.min_offset else None
            if unit is None or unit[0] >= log_min:
                break
            self.files.pop(0).destroy()
            self.min_offset = self.files[0].start // UNIT_SIZE
        while self.min_offset < self.max_offset:
            unit = self.unit(self.min_offset)
            if unit is None or unit[0] >= log_min:
                break
            self.min_offset += 1
