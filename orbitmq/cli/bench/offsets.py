"""``orbitmq bench offsets``: what carrying consumer positions to a standby cluster costs, by time against a
plain copy of the offsets, in one run.

Two ``orbitmq standalone`` processes, a primary and a standby, each with ``topics`` topics of 8 queues
holding the same messages (the standby gets each one a few milliseconds after the primary, as a mirror
does). On the primary,
``groups`` consumer groups have committed positions on every queue of every topic. Then, timed:

- **export**: ``AdminClient.export_offsets`` of every group on the primary (what ``offset export`` does);
- **copy** (the baseline): ``import_offsets`` of that export into the standby, offset for offset
  (``offset import``): right only when both clusters hold the same offsets;
- **sync by time**: ``import_offsets(by_timestamp=True)`` into the standby (``offset sync``): each queue set
  to the first message stored at or after the last one the group consumed on the primary.

Reported: queue entries, seconds and ms per entry of each step, the ratio sync / copy, and what the time
mapping cost in redelivery: per queue, how many messages before the primary's position the standby's starts
(never after it: the sync is at-least-once).
"""

from __future__ import annotations

import asyncio
from typing import Any

from orbitmq.admin import AdminClient
from orbitmq.cli.bench.common import machine, timer
from orbitmq.cli.bench.servers import standalone_process
from orbitmq.client.model import Message, MessageQueue
from orbitmq.client.producer import Producer

__all__ = ["run_offsets_bench"]

QUEUES = 8
BODY = b"x" * 256


async def _queues(namesrv: str, topics: list[str]) -> list[MessageQueue]:
    """Create the topics; their queues."""
    out = []
    async with AdminClient(namesrv) as admin:
        for topic in topics:
            await admin.create_topic(topic, queues=QUEUES)
            broker = (await admin.topic_masters(topic))[0][0].name
            out += [MessageQueue(topic, broker, q) for q in range(QUEUES)]
    return out


async def _fill(primary: str, standby: str, topics: list[str], per_queue: int) -> None:
    """``per_queue`` messages to every queue of both clusters, each round to the primary first and then to
    the standby (a mirror a few milliseconds behind), so a message's standby copy is never stored earlier."""
    producers = [Producer("bench-offsets", primary), Producer("bench-offsets", standby)]
    plans = [await _queues(primary, topics), await _queues(standby, topics)]
    for p in producers:
        await p.start()
    try:
        for _ in range(per_queue):
            for producer, queues in zip(producers, plans, strict=True):
                await asyncio.gather(*(producer.send(Message(mq.topic, BODY), queue=mq) for mq in queues))
    finally:
        for p in producers:
            await p.shutdown()


async def _commit_positions(namesrv: str, topics: list[str], groups: list[str], per_queue: int) -> None:
    """Every group at a different position of every topic (a reset by offset commits it)."""
    async with AdminClient(namesrv) as admin:
        for g, group in enumerate(groups):
            for t, topic in enumerate(topics):
                await admin.reset_offset(group, topic, offset=1 + (g * 7 + t * 3) % (per_queue - 1))


async def _measure(primary: str, standby: str, groups: list[str]) -> dict[str, Any]:
    async with AdminClient(primary) as source, AdminClient(standby) as target:
        t0 = timer()
        entries = await source.export_offsets(groups)
        exported = timer() - t0
        t0 = timer()
        copied = await target.import_offsets(entries)
        copy_s = timer() - t0
        t0 = timer()
        synced = await target.import_offsets(entries, by_timestamp=True)
        sync_s = timer() - t0
    position = {(e.group, e.topic, e.queue_id): e.offset for e in entries}
    behind = [position[(c.group, c.topic, c.queue_id)] - c.new for c in synced if c.new is not None]
    n = len(entries)
    return {
        "entries": n,
        "export": {"seconds": round(exported, 3), "ms_per_entry": round(exported * 1000 / n, 3)},
        "copy": {"seconds": round(copy_s, 3), "ms_per_entry": round(copy_s * 1000 / n, 3),
                 "applied": sum(c.new is not None for c in copied)},
        "sync_by_time": {"seconds": round(sync_s, 3), "ms_per_entry": round(sync_s * 1000 / n, 3),
                         "applied": len(behind)},
        "ratio_sync_to_copy": round(sync_s / copy_s, 3) if copy_s else None,
        "redelivered_per_queue": {"max": max(behind, default=0), "mean": round(sum(behind) / len(behind), 2)
                                  if behind else 0.0, "ahead_of_primary": sum(b < 0 for b in behind)},
    }  # fmt: skip


async def _main(groups: int, topics: int, per_queue: int) -> dict[str, Any]:
    topic_names = [f"BenchOffsets{t}" for t in range(topics)]
    group_names = [f"BenchOffsetsG{g}" for g in range(groups)]
    async with standalone_process("ASYNC_FLUSH") as primary, standalone_process("ASYNC_FLUSH") as standby:
        await _fill(primary.namesrv, standby.namesrv, topic_names, per_queue)
        await _commit_positions(primary.namesrv, topic_names, group_names, per_queue)
        result = await _measure(primary.namesrv, standby.namesrv, group_names)
    return {"workload": "offsets", "machine": machine(), "groups": groups, "topics": topics,
            "queues_per_topic": QUEUES, "messages_per_queue": per_queue, **result}  # fmt: skip


def run_offsets_bench(groups: int = 20, topics: int = 10, quick: bool = False) -> dict[str, Any]:
    if quick:
        return asyncio.run(_main(2, 2, 8))
    return asyncio.run(_main(groups, topics, 40))
