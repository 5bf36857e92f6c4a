"""The stdlib atomic file write shared by the store's config files and the client's local offset file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from orbitmq.core.fileio import atomic_write


def test_replaces_the_file_and_keeps_the_previous_content_as_bak(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "state.json"  # missing parents are created
    atomic_write(path, b"one")
    assert path.read_bytes() == b"one" and not path.with_name("state.json.bak").exists()
    atomic_write(str(path), b"two")
    assert path.read_bytes() == b"two"
    assert path.with_name("state.json.bak").read_bytes() == b"one"
    assert not path.with_name("state.json.tmp").exists()


def test_fsyncs_the_file_and_only_the_directory_when_asked(tmp_path: Path) -> None:
    files: list[int] = []
    dirs: list[str] = []

    def fsync(fd: int) -> None:
        files.append(fd)
        os.fsync(fd)

    atomic_write(tmp_path / "a", b"x", fsync=fsync)
    assert len(files) == 1 and dirs == []
    atomic_write(tmp_path / "b", b"x", fsync=fsync, fsync_dir=dirs.append)
    assert len(files) == 2 and dirs == [str(tmp_path)]


def test_a_failed_fsync_leaves_the_old_content_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, b"old")

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "injected")

    with pytest.raises(OSError):
        atomic_write(path, b"new", fsync=failing)
    assert path.read_bytes() == b"old"
    assert not path.with_name("state.json.bak").exists()


def test_mode_sets_the_permission_bits_of_a_new_file(tmp_path: Path) -> None:
    umask = os.umask(0)
    try:
        atomic_write(tmp_path / "default", b"x")
        atomic_write(tmp_path / "open", b"x", mode=0o666)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "default").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "open").stat().st_mode) == 0o666
