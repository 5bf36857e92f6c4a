"""Atomic replacement of a small file, RocketMQ's way (standard library only).

Shared by the layers that may not import each other: the store/broker JSON config files go through
:func:`orbitmq.store.fileops.atomic_write` (which passes its injectable ``FileOps`` fsyncs in here), and the
client's local (broadcasting) offset file calls :func:`atomic_write` directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["atomic_write"]


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    fsync: Callable[[int], None] = os.fsync,
    fsync_dir: Callable[[str], None] | None = None,
    mode: int = 0o644,
) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new content.

    Write ``path.tmp`` (created with permission bits ``mode``, before the umask), ``fsync`` it, move the
    current file (if any) to ``path.bak``, rename the temp file into place, then ``fsync_dir`` the
    directory when given (without it the renames are atomic but may be lost by a crash). The parent
    directory is created if missing. OSError propagates; callers translate it to their layer's error.
    Blocking: run it in a worker thread from async code.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    tmp = target + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        fsync(fd)
    finally:
        os.close(fd)
    if os.path.exists(target):
        os.replace(target, target + ".bak")
    os.replace(tmp, target)
    if fsync_dir is not None:
        fsync_dir(directory)
