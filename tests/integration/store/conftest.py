from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from orbitmq.core.clock import FakeClock
from orbitmq.store import FileMessageStore, FlushDiskType, MemoryMessageStore, MessageToStore, StoreConfig


def small_config(root: str, **overrides: object) -> StoreConfig:
    """Small segments so tests cross segment and consume-queue file boundaries quickly."""
    base = StoreConfig(
        store_path_root_dir=root,
        mapped_file_size_commit_log=64 * 1024,
        mapped_file_size_consume_queue=20 * 64,
        max_hash_slot_num=101,
        max_index_num=400,
        flush_interval_commit_log_ms=20,
        flush_interval_consume_queue_ms=50,
        clean_resource_interval_ms=3_600_000,
        store_host=("127.0.0.1", 10911),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def msg(topic: str = "T", queue_id: int = 0, body: bytes = b"x", **props: str) -> MessageToStore:
    return MessageToStore(topic=topic, queue_id=queue_id, body=body, properties=dict(props), born_timestamp=1)


StoreFactory = Callable[..., object]

KINDS = ["memory", "file-async", "file-sync"]


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[object]:
    clock = FakeClock()
    kind = request.param
    if kind == "memory":
        s: object = MemoryMessageStore(small_config(str(tmp_path)), clock=clock)
    else:
        flush = FlushDiskType.SYNC_FLUSH if kind == "file-sync" else FlushDiskType.ASYNC_FLUSH
        s = FileMessageStore(small_config(str(tmp_path / "store"), flush_disk_type=flush), clock=clock)
    s.clock_for_test = clock  # type: ignore[attr-defined]
    await s.start()  # type: ignore[attr-defined]
    yield s
    await s.stop()  # type: ignore[attr-defined]
