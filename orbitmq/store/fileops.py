"""File operations behind one small shim, so tests can inject failures (a failing fsync, a full disk).

Everything that makes data durable goes through a :class:`FileOps`: the CommitLog's flushes, the
checkpoint, and the atomic JSON config files (consumer offsets, topics). :class:`FaultyFileOps` in
``orbitmq.testing`` subclasses it to fail on command.
"""

from __future__ import annotations

import os
import shutil

from orbitmq.core import fileio

__all__ = ["FileOps", "atomic_write", "read_with_backup"]


class FileOps:
    """The real thing. Methods are blocking: call them from a worker thread, not the event loop."""

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def disk_used_ratio(self, path: str) -> float:
        """Fraction (0..1) of the file system holding ``path`` that is in use."""
        usage = shutil.disk_usage(path)
        return (usage.total - usage.free) / usage.total if usage.total else 1.0


def atomic_write(path: str, data: bytes, ops: FileOps | None = None) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new content.

    The previous content is kept as ``path.bak`` (RocketMQ's procedure): write ``path.tmp``, fsync it,
    move the current file to ``.bak``, rename the temp file into place, fsync the directory; both fsyncs
    go through ``ops`` (:func:`orbitmq.core.fileio.atomic_write` does the rest).
    Blocking: run it in a worker thread from async code.
    """
    ops = ops or FileOps()
    fileio.atomic_write(path, data, fsync=ops.fsync, fsync_dir=ops.fsync_dir)


def read_with_backup(path: str) -> bytes | None:
    """The content of ``path``, or of ``path.bak`` when ``path`` is missing or empty; None if neither."""
    for candidate in (path, path + ".bak"):
        try:
            with open(candidate, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        if data.strip():
            return data
    return None
