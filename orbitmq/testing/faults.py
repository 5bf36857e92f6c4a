"""Fault-injecting file operations for tests: fail the next fsync, pretend the disk is full."""

from __future__ import annotations

import errno
import threading

from orbitmq.store.fileops import FileOps

__all__ = ["FaultyFileOps"]


class FaultyFileOps(FileOps):
    """A :class:`FileOps` that fails on command. Thread-safe: the store calls it from worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fail_fsyncs = 0  # the next N fsync/fdatasync calls raise EIO
        self.fsync_calls = 0
        self.disk_ratio: float | None = None  # when set, reported instead of the real usage

    def fail_next_fsyncs(self, n: int = 1) -> None:
        with self._lock:
            self.fail_fsyncs = n

    def _maybe_fail(self) -> None:
        with self._lock:
            self.fsync_calls += 1
            if self.fail_fsyncs > 0:
                self.fail_fsyncs -= 1
                raise OSError(errno.EIO, "injected fsync failure")

    def fsync(self, fd: int) -> None:
        self._maybe_fail()
        super().fsync(fd)

    def fdatasync(self, fd: int) -> None:
        self._maybe_fail()
        super().fdatasync(fd)

    def disk_used_ratio(self, path: str) -> float:
        return self.disk_ratio if self.disk_ratio is not None else super().disk_used_ratio(path)
