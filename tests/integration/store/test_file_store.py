"""File-store behaviour beyond the contract: restart, recovery from torn and corrupt tails, failed fsync,
retention and the disk guard. Real files in tmp dirs; faults through the injected FileOps shim."""

from __future__ import annotations

import os
import shutil

import pytest

from orbitmq.core.clock import FakeClock
from orbitmq.protocol.record import decode_record
from orbitmq.store import FileMessageStore, FlushDiskType, GetStatus, PutStatus
from orbitmq.testing.faults import FaultyFileOps

from .conftest import msg, small_config


def bodies(store, topic: str = "T", queue_id: int = 0) -> list[bytes]:
    out, offset = [], store.min_offset_in_queue(topic, queue_id)
    while True:
        got = store.get_messages(topic, queue_id, offset, 32)
        if got.status is not GetStatus.FOUND:
            return out
        out += [decode_record(b).body for b in got.buffers]
        offset = got.next_begin_offset


async def open_store(root, **overrides) -> FileMessageStore:
    store = FileMessageStore(small_config(str(root), **overrides), clock=overrides.pop("clock", None))
    await store.start()
    return store


@pytest.mark.parametrize("flush", [FlushDiskType.ASYNC_FLUSH, FlushDiskType.SYNC_FLUSH])
async def test_clean_restart_keeps_messages_offsets_and_index(tmp_path, flush) -> None:
    s = await open_store(tmp_path, flush_disk_type=flush)
    for i in range(25):
        await s.put_message(msg("T", i % 2, f"m{i}".encode(), KEYS=f"k{i}"))
    await s.stop()
    assert not os.path.exists(tmp_path / "abort")
    s2 = await open_store(tmp_path, flush_disk_type=flush)
    try:
        assert not s2.abnormal_start
        assert bodies(s2, "T", 0) == [f"m{i}".encode() for i in range(0, 25, 2)]
        assert [r.body for r in s2.query_message("T", "k7", 5)] == [b"m7"]
        res = await s2.put_message(msg("T", 1, b"after"))
        assert res.queue_offset == 12  # queue offsets continue where they were
    finally:
        await s2.stop()


def crash_copy(src, dst) -> None:
    """The state a killed process leaves: files as written, abort marker present, no final checkpoint."""
    shutil.copytree(src, dst)
    (dst / "abort").touch()
    os.unlink(dst / "lock")


async def write_then_snapshot(tmp_path, n: int):
    """Write n records, snapshot the directory as a crash would leave it; returns (dir, put results)."""
    live = tmp_path / "live"
    s = await open_store(live)
    results = [await s.put_message(msg("T", 0, f"body-{i}".encode() * 3, KEYS=f"k{i}")) for i in range(n)]
    await s.flush_commitlog()
    snap = tmp_path / "snap"
    crash_copy(live, snap)
    await s.stop()
    # Force a scan from the start: the checkpoint of a crash may be as old as the first record.
    (snap / "checkpoint").unlink(missing_ok=True)
    return snap, results


async def test_torn_last_record_at_every_byte_is_dropped(tmp_path) -> None:
    snap, results = await write_then_snapshot(tmp_path, 5)
    last = results[-1]
    seg = snap / "commitlog" / f"{0:020d}"
    original = seg.read_bytes()
    for cut in range(last.wrote_bytes):
        case = tmp_path / f"cut{cut}"
        shutil.copytree(snap, case)
        data = bytearray(original)
        data[last.physical_offset + cut : last.physical_offset + last.wrote_bytes] = bytes(
            last.wrote_bytes - cut
        )
        (case / "commitlog" / f"{0:020d}").write_bytes(data)
        s = await open_store(case)
        try:
            assert s.abnormal_start
            assert bodies(s) == [f"body-{i}".encode() * 3 for i in range(4)], f"cut at byte {cut}"
            assert s.max_physical_offset == last.physical_offset
            res = await s.put_message(msg("T", 0, b"next"))
            assert res.queue_offset == 4 and res.physical_offset == last.physical_offset
        finally:
            await s.stop()
        shutil.rmtree(case)


async def test_flipped_byte_is_rejected_not_served(tmp_path) -> None:
    snap, results = await write_then_snapshot(tmp_path, 5)
    seg = snap / "commitlog" / f"{0:020d}"
    data = bytearray(seg.read_bytes())
    target = results[3]
    data[target.physical_offset + 90] ^= 0xFF  # inside the body of record 3 (bodies start at byte 88)
    seg.write_bytes(data)
    s = await open_store(snap)
    try:
        served = bodies(s)
        assert f"body-{3}".encode() * 3 not in served
        assert served == [f"body-{i}".encode() * 3 for i in range(3)]  # recovery stops at the corrupt record
    finally:
        await s.stop()


async def test_corrupt_record_behind_the_checkpoint_is_never_served(tmp_path) -> None:
    s = await open_store(tmp_path)
    results = [await s.put_message(msg("T", 0, f"body-{i}".encode() * 3)) for i in range(5)]
    await s.stop()  # clean: the checkpoint covers every record, recovery will not scan them
    seg = tmp_path / "commitlog" / f"{0:020d}"
    data = bytearray(seg.read_bytes())
    data[results[2].physical_offset + 90] ^= 0xFF  # inside the body
    seg.write_bytes(data)
    s2 = await open_store(tmp_path)
    try:
        assert bodies(s2) == [f"body-{i}".encode() * 3 for i in (0, 1, 3, 4)]  # read-side CRC check skips it
    finally:
        await s2.stop()


async def test_failed_fsync_fails_the_append_and_refuses_writes(tmp_path) -> None:
    ops = FaultyFileOps()
    s = FileMessageStore(small_config(str(tmp_path), flush_disk_type=FlushDiskType.SYNC_FLUSH), ops=ops)
    await s.start()
    try:
        assert (await s.put_message(msg(body=b"ok"))).ok
        ops.fail_next_fsyncs(1)
        failed = await s.put_message(msg(body=b"lost?"))
        assert failed.status is PutStatus.FLUSH_DISK_FAILED
        assert s.get_messages("T", 0, 1, 32).status is not GetStatus.FOUND  # never dispatched
        refused = await s.put_message(msg(body=b"later"))
        assert refused.status is PutStatus.SERVICE_NOT_AVAILABLE and not s.writable
    finally:
        await s.stop()
    assert os.path.exists(tmp_path / "abort")  # not a clean shutdown: next start recovers abnormally


async def test_disk_guard_refuses_writes_and_accepts_them_again(tmp_path) -> None:
    ops = FaultyFileOps()
    s = FileMessageStore(small_config(str(tmp_path), disk_max_used_space_ratio=75), ops=ops)
    await s.start()
    try:
        ops.disk_ratio = 0.80
        await s.check_disk_space()
        res = await s.put_message(msg())
        assert res.status is PutStatus.SERVICE_NOT_AVAILABLE and "disk full" in res.remark
        ops.disk_ratio = 0.50
        await s.check_disk_space()
        assert (await s.put_message(msg())).ok
    finally:
        await s.stop()


async def test_retention_deletes_old_segments_and_moves_queue_minimum(tmp_path) -> None:
    clock = FakeClock(start_ms=int(os.path.getmtime(tmp_path) * 1000))
    s = FileMessageStore(small_config(str(tmp_path), file_reserved_time_h=1), clock=clock)
    await s.start()
    try:
        body = b"r" * 3000
        results = [await s.put_message(msg("T", 0, body)) for i in range(60)]
        segments_before = len(s.commitlog.segments)
        assert segments_before >= 3
        assert await s.delete_expired_files() == 0  # nothing is older than an hour yet
        await clock.advance(2 * 3600)
        deleted = await s.delete_expired_files()
        assert deleted == segments_before - 1
        new_min = s.commitlog.min_offset
        first_kept = next(i for i, r in enumerate(results) if r.physical_offset >= new_min)
        assert s.min_offset_in_queue("T", 0) == first_kept
        below = s.get_messages("T", 0, 0, 32)
        assert below.status is GetStatus.OFFSET_TOO_SMALL and below.next_begin_offset == first_kept
        assert len(bodies(s)) == 60 - first_kept
    finally:
        await s.stop()


async def test_store_directory_cannot_be_opened_twice(tmp_path) -> None:
    s = await open_store(tmp_path)
    try:
        with pytest.raises(Exception, match="in use"):
            await open_store(tmp_path)
    finally:
        await s.stop()
