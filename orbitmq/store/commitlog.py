"""The CommitLog: every message of every topic, appended to fixed-size segments in one offset space.

Segment files are named by their start offset (20 digits). A record that does not fit in what is left of a
segment (with 8 bytes to spare for the blank) leaves a blank end-of-segment record and goes to the next one.
Positions: ``write_pos`` is where the next record goes, ``flushed_pos`` how far the bytes are durable.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterator

from orbitmq.core.errors import StoreError
from orbitmq.protocol.record import (
    BLANK_MAGIC,
    MAGIC_V1,
    MAGIC_V2,
    PREFIX_SIZE,
    MessageRecord,
    decode_record,
    properties_span,
    verify_record_crc,
)
from orbitmq.store.fileops import FileOps
from orbitmq.store.mapped_file import MappedFile, offset_file_name

__all__ = ["CommitLog", "ScannedRecord"]

log = logging.getLogger("orbitmq.store")

_BLANK = struct.Struct(">ii")
_I64 = struct.Struct(">q")
BLANK_SIZE = 8

#: What recovery yields for every valid record: (physical offset, size, decoded record without its body).
ScannedRecord = tuple[int, int, MessageRecord]


class CommitLog:
    def __init__(self, directory: str, segment_size: int, ops: FileOps) -> None:
        if segment_size < 4096:
            raise StoreError(f"mappedFileSizeCommitLog must be at least 4096 bytes, got {segment_size}")
        self.directory = directory
        self.segment_size = segment_size
        self.ops = ops
        self.segments: list[MappedFile] = []
        self.write_pos = 0
        self.flushed_pos = 0

    # -- files ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Map the existing segments (in offset order); a gap between them is corruption."""
        os.makedirs(self.directory, exist_ok=True)
        names = sorted(n for n in os.listdir(self.directory) if n.isdigit() and len(n) == 20)
        for name in names:
            start = int(name)
            if self.segments and start != self.segments[-1].end:
                raise StoreError(f"CommitLog segment {name} does not follow {self.segments[-1].path}")
            if os.path.getsize(os.path.join(self.directory, name)) not in (0, self.segment_size):
                log.warning("segment %s has a different size; it is resized to %d", name, self.segment_size)
            self.segments.append(self._map(start))
        if self.segments:
            self.write_pos = self.flushed_pos = self.segments[0].start

    def _map(self, start: int) -> MappedFile:
        return MappedFile(os.path.join(self.directory, offset_file_name(start)), start, self.segment_size)

    @property
    def min_offset(self) -> int:
        return self.segments[0].start if self.segments else 0

    def segment_at(self, offset: int) -> MappedFile | None:
        if not self.segments or offset < self.segments[0].start:
            return None
        i = (offset - self.segments[0].start) // self.segment_size
        return self.segments[i] if i < len(self.segments) else None

    def close(self) -> None:
        for seg in self.segments:
            seg.close()

    # -- append --------------------------------------------------------------------------------------
    def reserve(self, size: int) -> int:
        """The physical offset where a record of ``size`` bytes will be written; may roll the segment."""
        if size + BLANK_SIZE > self.segment_size:
            raise StoreError(f"record of {size} bytes does not fit a {self.segment_size}-byte segment")
        seg = self.segment_at(self.write_pos) if self.segments else None
        if seg is None:
            seg = self._map(self.write_pos)
            self.segments.append(seg)
        remaining = seg.end - self.write_pos
        if size + BLANK_SIZE > remaining:
            seg.write(self.write_pos - seg.start, _BLANK.pack(remaining, BLANK_MAGIC))
            self.write_pos = seg.end
            self.segments.append(self._map(seg.end))
        return self.write_pos

    def write(self, offset: int, data: bytes | bytearray) -> None:
        """Copy a record reserved at ``offset`` into its segment and advance ``write_pos``.

        TOTALSIZE goes in last: it is the record's commit marker. A process killed in the middle of the copy
        leaves a zero size behind, which recovery reads as the end of the log.
        """
        seg = self.segment_at(offset)
        assert seg is not None and offset == self.write_pos
        pos = offset - seg.start
        view = memoryview(data)
        seg.write(pos + 4, view[4:])
        seg.write(pos, view[:4])
        self.write_pos = offset + len(data)

    # -- read ----------------------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> memoryview | None:
        seg = self.segment_at(offset)
        if seg is None or offset + size > min(seg.end, self.write_pos):
            return None
        pos = offset - seg.start
        return seg.view[pos : pos + size]

    def read_record(self, offset: int) -> memoryview | None:
        """The whole record at ``offset`` (its size read from the record), or None."""
        head = self.read(offset, 8)
        if head is None:
            return None
        size, magic = _BLANK.unpack(head)
        if magic not in (MAGIC_V1, MAGIC_V2) or size < PREFIX_SIZE:
            return None
        return self.read(offset, size)

    def read_long(self, offset: int) -> int:
        view = self.read(offset, 8)
        if view is None:
            raise StoreError(f"CommitLog offset {offset} is not readable")
        return int(_I64.unpack(view)[0])

    # -- durability ----------------------------------------------------------------------------------
    def flush_blocking(self, target: int) -> None:
        """Make bytes up to ``target`` durable. Blocking: run in a worker thread."""
        for seg in list(self.segments):
            if seg.end > self.flushed_pos and seg.start < target and not seg.closed:
                self.ops.fdatasync(seg.fd)

    # -- recovery ------------------------------------------------------------------------------------
    def scan(self, start: int, check_crc: bool) -> Iterator[ScannedRecord]:
        """Valid records from ``start`` on; stops at the first record that is torn, corrupt or zero.

        After the loop, ``self.write_pos`` is the end of the last valid record.
        """
        offset = max(start, self.min_offset)
        self.write_pos = offset
        while True:
            seg = self.segment_at(offset)
            if seg is None:
                return
            pos = offset - seg.start
            view = seg.view
            if pos + BLANK_SIZE > seg.size:
                offset = seg.end
                continue
            size, magic = _BLANK.unpack_from(view, pos)
            if magic == BLANK_MAGIC and size == seg.size - pos:
                offset = self.write_pos = seg.end
                continue
            rec = self._valid(view, pos, size, magic, offset, check_crc, seg.size)
            if rec is None:
                return
            yield offset, size, rec
            offset += size
            self.write_pos = offset

    @staticmethod
    def _valid(
        view: memoryview, pos: int, size: int, magic: int, offset: int, check: bool, limit: int
    ) -> MessageRecord | None:
        """The decoded record (body dropped) if the record at ``pos`` is whole and sound, else None."""
        if magic not in (MAGIC_V1, MAGIC_V2) or size < PREFIX_SIZE or pos + size > limit:
            return None
        record = view[pos : pos + size]
        try:
            rec = decode_record(record, 0, with_body=False)
            _start, props_len = properties_span(record)
        except Exception:
            return None
        if rec.physical_offset != offset:
            return None  # a stale record from before an earlier truncation, never a live one
        if props_len and record[size - 1] != 0x02:
            return None  # properties end with their separator (or are empty): a clipped tail is torn
        if check and not verify_record_crc(record):
            return None
        return rec

    def truncate_after(self, end: int) -> None:
        """Forget every byte from ``end`` on: later segments are deleted, the tail of the last is zeroed."""
        while self.segments and self.segments[-1].start > end:
            self.segments.pop().destroy()
        if self.segments and end < self.segments[-1].end:
            seg = self.segments[-1]
            seg.truncate_after(end - seg.start)
            if end == seg.start and len(self.segments) > 1:
                self.segments.pop().destroy()
        self.write_pos = end
        self.flushed_pos = min(self.flushed_pos, end)

    # -- retention -----------------------------------------------------------------------------------
    def delete_expired(self, now_s: float, reserved_s: float, on_delete: Callable[[int], None]) -> int:
        """Delete whole segments (never the one being written) last modified more than ``reserved_s`` ago."""
        deleted = 0
        while len(self.segments) > 1:
            seg = self.segments[0]
            if now_s - os.path.getmtime(seg.path) <= reserved_s or self.write_pos < seg.end:
                break
            self.segments.pop(0).destroy()
            deleted += 1
            on_delete(self.min_offset)
            log.info("deleted expired CommitLog segment %s", seg.path)
        return deleted
