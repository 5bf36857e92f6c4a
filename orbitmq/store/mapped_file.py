"""A fixed-size file mapped into memory: the unit of the CommitLog, consume queues and index.

Appends copy bytes into the mapping (page cache; no system call on the event loop). Durability comes from
``FileOps.fdatasync`` on the file descriptor, which callers run in a worker thread. Reads are memoryview
slices of the mapping: a pull body goes out without a copy.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os

__all__ = ["MappedFile", "offset_file_name"]

log = logging.getLogger("orbitmq.store")


def offset_file_name(offset: int) -> str:
    """RocketMQ names segment files by their start offset, 20 digits, zero padded."""
    return f"{offset:020d}"


class MappedFile:
    def __init__(self, path: str, start: int, size: int) -> None:
        self.path = path
        self.start = start
        self.size = size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(self._fd).st_size != size:
                os.ftruncate(self._fd, size)
            self._mm = mmap.mmap(self._fd, size, access=mmap.ACCESS_WRITE)
        except BaseException:
            os.close(self._fd)
            raise
        self.view = memoryview(self._mm)
        self.closed = False

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def fd(self) -> int:
        return self._fd

    def write(self, pos: int, data: bytes | bytearray | memoryview) -> None:
        self._mm[pos : pos + len(data)] = data

    def truncate_after(self, pos: int) -> None:
        """Drop every byte from ``pos`` to the end of the file (zeros afterwards), so stale records behind
        a recovered end can never be mistaken for new ones."""
        # Shrinking drops the pages from the page cache (and from this mapping); growing back gives zeros.
        # The mapping stays valid because nothing touches it between the two calls (recovery runs before
        # any reader or flusher starts).
        os.ftruncate(self._fd, pos)
        os.ftruncate(self._fd, self.size)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.view.release()
        try:
            self._mm.close()
        except BufferError:
            # Readers still hold slices (a pull body in flight). The mapping is unmapped when the last
            # slice is garbage collected; the descriptor can go now.
            log.debug("mapping of %s still referenced; unmapped later", self.path)
        os.close(self._fd)

    def destroy(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
