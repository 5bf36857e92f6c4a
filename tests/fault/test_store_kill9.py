"""A child process appends under SYNC_FLUSH and is killed with SIGKILL at a random moment: every append it
saw acknowledged is present after recovery, and the consume queues agree with the CommitLog."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from orbitmq.protocol.record import decode_record
from orbitmq.store import FileMessageStore, FlushDiskType, GetStatus, StoreConfig

pytestmark = pytest.mark.fault

APPENDER = os.path.join(os.path.dirname(__file__), "appender.py")


def run_and_kill(root: str, delay_s: float) -> list[tuple[int, int, int]]:
    proc = subprocess.Popen([sys.executable, APPENDER, root], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    acks = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "ack":  # a line cut by the kill is not an ack the child saw
            acks.append((int(parts[1]), int(parts[2]), int(parts[3])))
    return acks


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_acknowledged_appends_survive_sigkill(tmp_path, seed) -> None:
    rng = random.Random(seed)
    delay = rng.uniform(0.3, 1.5)
    root = str(tmp_path / "store")
    acks = run_and_kill(root, delay)
    assert acks, f"child acknowledged nothing in {delay:.2f}s"
    store = FileMessageStore(
        StoreConfig(
            store_path_root_dir=root,
            flush_disk_type=FlushDiskType.SYNC_FLUSH,
            mapped_file_size_commit_log=256 * 1024,
            mapped_file_size_consume_queue=20 * 1000,
            max_hash_slot_num=1000,
            max_index_num=10_000,
        )
    )
    await store.start()
    try:
        assert store.abnormal_start
        present: dict[tuple[int, int], bytes] = {}
        for qid in range(4):
            offset = 0
            expected_offset = 0
            while True:
                got = store.get_messages("K", qid, offset, 32)
                if got.status is not GetStatus.FOUND:
                    break
                for buf, qo in zip(got.buffers, got.queue_offsets, strict=True):
                    rec = decode_record(buf)
                    # the consume queue agrees with the log: same topic, queue and offset, no holes
                    assert (
                        (rec.topic, rec.queue_id, rec.queue_offset)
                        == ("K", qid, qo)
                        == ("K", qid, expected_offset)
                    )
                    present[(qid, qo)] = rec.body
                    expected_offset += 1
                offset = got.next_begin_offset
            assert store.max_offset_in_queue("K", qid) == expected_offset
        for n, qid, qo in acks:
            body = present.get((qid, qo))
            assert body is not None and body.startswith(f"msg-{n}-".encode()), (
                f"acked append {n} lost (seed {seed})"
            )
    finally:
        await store.stop()
