"""``orbitmq bench store``: CommitLog append and read throughput, recovery time, against the machine's limits.

Baselines measured in the same run on the same disk: a buffered ``write()`` of the same 1 KiB records (one
system call per record into the page cache, no fsync) and the single-writer ``write + fsync`` rate.
Reported ratios: ASYNC append / raw write (aim ≥ 0.5) and SYNC 64 appenders / single fsync rate (aim ≥ 20:
group commit really groups).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from typing import Any

from orbitmq.cli.bench.common import machine, percentile, rate, timer
from orbitmq.store import FileMessageStore, FlushDiskType, GetStatus, MessageToStore, StoreConfig

__all__ = ["run_store_bench"]

BODY = b"x" * 1024


def _config(root: str, flush: FlushDiskType) -> StoreConfig:
    return StoreConfig(
        store_path_root_dir=root,
        flush_disk_type=flush,
        mapped_file_size_commit_log=256 * 1024 * 1024,
        max_hash_slot_num=500_000,
        max_index_num=2_000_000,
    )


def raw_write_rate(root: str, count: int) -> float:
    path = os.path.join(root, "raw.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    record = BODY + b"y" * 130  # about the size of an encoded 1 KiB record
    start = timer()
    for _ in range(count):
        os.write(fd, record)
    elapsed = timer() - start
    os.close(fd)
    os.unlink(path)
    return rate(count, elapsed)


def fsync_rate(root: str, seconds: float) -> float:
    path = os.path.join(root, "fsync.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    n = 0
    start = timer()
    while timer() - start < seconds:
        os.write(fd, BODY)
        os.fsync(fd)
        n += 1
    elapsed = timer() - start
    os.close(fd)
    os.unlink(path)
    return rate(n, elapsed)


async def append_run(
    root: str, flush: FlushDiskType, batch: int, appenders: int, seconds: float
) -> dict[str, Any]:
    store = FileMessageStore(_config(root, flush))
    await store.start()
    latencies: list[float] = []
    count = 0
    deadline = timer() + seconds

    async def appender(qid: int) -> None:
        nonlocal count
        msgs = [MessageToStore(topic="Bench", queue_id=qid % 8, body=BODY) for _ in range(batch)]
        while timer() < deadline:
            t0 = timer()
            res = await (store.put_messages(msgs) if batch > 1 else store.put_message(msgs[0]))
            latencies.append((timer() - t0) * 1000)
            if not res.ok:
                raise RuntimeError(f"append failed: {res.status} {res.remark}")
            count += batch

    start = timer()
    await asyncio.gather(*(appender(i) for i in range(appenders)))
    elapsed = timer() - start
    gc = store.group_commit
    per_fsync = round(gc.flushed_requests / gc.flushes, 1) if gc is not None and gc.flushes else None
    await store.stop()
    return {
        "appends_per_fsync": per_fsync,
        "flush": flush.value,
        "batch": batch,
        "appenders": appenders,
        "messages": count,
        "msgs_per_s": round(rate(count, elapsed)),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
    }


async def read_and_recovery_run(root: str, total_bytes: int) -> dict[str, Any]:
    cfg = _config(root, FlushDiskType.ASYNC_FLUSH)
    store = FileMessageStore(cfg)
    await store.start()
    n = total_bytes // (len(BODY) + 130)
    msgs = [MessageToStore(topic="Bench", queue_id=0, body=BODY) for _ in range(32)]
    for _ in range(n // 32):
        await store.put_messages(msgs)
    written = store.max_physical_offset
    start = timer()
    offset, read = 0, 0
    while True:
        got = store.get_messages("Bench", 0, offset, 32)
        if got.status is not GetStatus.FOUND:
            break
        read += got.message_count
        offset = got.next_begin_offset
    read_s = timer() - start
    del got
    await store.stop()
    # A crash leaves the abort marker and an old checkpoint: recovery scans and re-dispatches everything.
    open(os.path.join(root, "abort"), "wb").close()
    os.unlink(os.path.join(root, "checkpoint"))
    shutil.rmtree(os.path.join(root, "consumequeue"))
    shutil.rmtree(os.path.join(root, "index"))
    recovering = FileMessageStore(cfg)
    start = timer()
    await recovering.start()
    recovery_s = timer() - start
    recovered = recovering.max_offset_in_queue("Bench", 0)
    await recovering.stop()
    gib = written / (1 << 30)
    return {
        "read_msgs_per_s": round(rate(read, read_s)),
        "read_messages": read,
        "recovery_bytes": written,
        "recovered_messages": recovered,
        "recovery_s": round(recovery_s, 3),
        "recovery_s_per_gib": round(recovery_s / gib, 2) if gib else None,
    }


async def _main(seconds: float, recovery_mib: int, directory: str | None) -> dict[str, Any]:
    base = tempfile.mkdtemp(prefix="orbitmq-bench-", dir=directory)
    try:
        raw = raw_write_rate(base, 200_000)
        single_fsync = fsync_rate(base, seconds)
        runs = []
        for flush, batch, appenders in [
            (FlushDiskType.ASYNC_FLUSH, 1, 1),
            (FlushDiskType.ASYNC_FLUSH, 32, 1),
            (FlushDiskType.ASYNC_FLUSH, 1, 64),
            (FlushDiskType.SYNC_FLUSH, 1, 1),
            (FlushDiskType.SYNC_FLUSH, 1, 64),
            (FlushDiskType.SYNC_FLUSH, 32, 64),
        ]:
            root = tempfile.mkdtemp(dir=base)
            runs.append(await append_run(root, flush, batch, appenders, seconds))
            shutil.rmtree(root)
        rr = await read_and_recovery_run(tempfile.mkdtemp(dir=base), recovery_mib << 20)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def find(flush: str, batch: int, appenders: int) -> int:
        return next(
            int(r["msgs_per_s"])
            for r in runs
            if (r["flush"], r["batch"], r["appenders"]) == (flush, batch, appenders)
        )

    async_1 = find("ASYNC_FLUSH", 1, 1)
    sync_64 = find("SYNC_FLUSH", 1, 64)
    return {
        "workload": "store",
        "machine": machine(),
        "baseline": {"raw_write_msgs_per_s": round(raw), "single_writer_fsync_per_s": round(single_fsync, 1)},
        "append": runs,
        "read_and_recovery": rr,
        "ratios": {
            "async_append_vs_raw_write": round(async_1 / raw, 3),
            "async_batch32_vs_raw_write": round(find("ASYNC_FLUSH", 32, 1) / raw, 3),
            "sync_64_appenders_vs_single_fsync": round(sync_64 / single_fsync, 1) if single_fsync else None,
        },
    }


def run_store_bench(
    seconds: float = 3.0, recovery_mib: int = 256, directory: str | None = None
) -> dict[str, Any]:
    return asyncio.run(_main(seconds, recovery_mib, directory))
