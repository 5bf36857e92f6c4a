"""Child process for the kill -9 test: appends under SYNC_FLUSH and prints every acknowledged append.

Usage: python appender.py DATA_DIR. Prints ``ack <n> <queue id> <queue offset>`` for each append the
store acknowledged (PUT_OK, i.e. after its group commit), flushing stdout each time.
"""

from __future__ import annotations

import asyncio
import sys

from orbitmq.store import FileMessageStore, FlushDiskType, MessageToStore, StoreConfig

APPENDERS = 16


async def main(root: str) -> None:
    store = FileMessageStore(
        StoreConfig(
            store_path_root_dir=root,
            flush_disk_type=FlushDiskType.SYNC_FLUSH,
            mapped_file_size_commit_log=256 * 1024,
            mapped_file_size_consume_queue=20 * 1000,
            max_hash_slot_num=1000,
            max_index_num=10_000,
            flush_interval_consume_queue_ms=20,
        )
    )
    await store.start()
    print("started", flush=True)
    counter = 0

    async def appender(worker: int) -> None:
        nonlocal counter
        while True:
            counter += 1
            n = counter
            body = f"msg-{n}-".encode() + b"p" * (n % 700)
            res = await store.put_message(MessageToStore(topic="K", queue_id=worker % 4, body=body))
            if res.ok:
                sys.stdout.write(f"ack {n} {worker % 4} {res.queue_offset}\n")
                sys.stdout.flush()

    await asyncio.gather(*(appender(i) for i in range(APPENDERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
