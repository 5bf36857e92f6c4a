"""``orbitmq bench txn``: transactional sends against plain sends, in the same run, through the SDK.

``orbitmq standalone`` runs in its own process (ASYNC_FLUSH, then SYNC_FLUSH); one client process drives it
with ``concurrency`` sends in flight over one connection:

- **plain**: ``Producer.send`` of 1 KiB messages;
- **transactional**: ``TransactionProducer.send_message_in_transaction`` of the same messages, the local
  transaction committing at once: a half message (a send), then END_TRANSACTION (oneway), which makes the
  broker store the real message and an op record (batched).

Reported: messages per second and send latency p50 / p99 for each, the ratio transactional / plain, and how
long after the last transactional send every committed message was visible (max offsets of the topic).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from orbitmq.cli.bench.common import machine, percentile, rate, timer
from orbitmq.cli.bench.servers import standalone_process
from orbitmq.client.model import Message
from orbitmq.client.producer import Producer
from orbitmq.client.transaction import LocalTransactionState, TransactionProducer
from orbitmq.protocol.codes import RequestCode

__all__ = ["run_txn_bench"]

BODY = b"x" * 1024
QUEUES = 8


class _Commit:
    def execute_local_transaction(self, msg: Message, arg: Any) -> LocalTransactionState:
        return LocalTransactionState.COMMIT_MESSAGE

    def check_local_transaction(self, msg: Any) -> LocalTransactionState:
        return LocalTransactionState.COMMIT_MESSAGE


async def _drive(total: int, concurrency: int, send: Any) -> dict[str, Any]:
    latencies: list[float] = []
    counter = itertools.count()

    async def worker() -> None:
        while next(counter) < total:
            t0 = timer()
            await send()
            latencies.append((timer() - t0) * 1000)

    start = timer()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = timer() - start
    return {
        "messages": len(latencies),
        "msgs_per_s": round(rate(len(latencies), elapsed)),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
    }


async def _visible(producer: Producer, topic: str) -> int:
    route = await producer.instance.route(topic, refresh=True)
    total = 0
    for mq in route.publish_queues:
        addr = route.master_addr(mq.broker_name)
        assert addr is not None
        resp = await producer.instance.request(
            addr, RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": mq.queue_id}
        )
        total += int(resp.ext_fields.get("offset", "0"))
    return total


async def _create_topic(producer: Producer, topic: str) -> None:
    route = await producer.instance.route("TBW102")
    for addr in route.master_addrs():
        await producer.instance.request(addr, RequestCode.UPDATE_AND_CREATE_TOPIC, {
            "topic": topic, "defaultTopic": "TBW102", "readQueueNums": QUEUES, "writeQueueNums": QUEUES,
            "perm": 6, "topicFilterType": "SINGLE_TAG", "topicSysFlag": 0, "order": False,
        })  # fmt: skip


async def _one_flush(flush: str, total: int, concurrency: int) -> dict[str, Any]:
    async with standalone_process(flush) as server:
        plain = Producer("bench-plain", server.namesrv)
        tx = TransactionProducer("bench-tx", server.namesrv, _Commit())
        await plain.start()
        await tx.start()
        try:
            await _create_topic(plain, "BenchPlain")
            await _create_topic(plain, "BenchTxn")
            await plain.send(Message("BenchPlain", BODY))  # warm up: routes and connections
            await tx.send_message_in_transaction(Message("BenchTxn", BODY))
            plain_run = await _drive(total, concurrency, lambda: plain.send(Message("BenchPlain", BODY)))
            tx_run = await _drive(
                total, concurrency, lambda: tx.send_message_in_transaction(Message("BenchTxn", BODY))
            )
            sent_by = timer()
            expected = total + 1
            while await _visible(plain, "BenchTxn") < expected and timer() - sent_by < 60:
                await asyncio.sleep(0.02)
            tx_run["all_committed_visible_after_ms"] = round((timer() - sent_by) * 1000, 1)
            tx_run["committed_visible"] = await _visible(plain, "BenchTxn") - 1
        finally:
            await tx.shutdown()
            await plain.shutdown()
    return {
        "flush": flush,
        "concurrency": concurrency,
        "plain": plain_run,
        "transactional": tx_run,
        "ratio_tx_to_plain": round(tx_run["msgs_per_s"] / plain_run["msgs_per_s"], 3)
        if plain_run["msgs_per_s"]
        else None,
    }


async def _main(total: int, concurrency: int, flushes: tuple[str, ...]) -> dict[str, Any]:
    runs = [await _one_flush(flush, total, concurrency) for flush in flushes]
    return {"workload": "txn", "machine": machine(), "body_bytes": len(BODY), "runs": runs}


def run_txn_bench(messages: int = 20_000, concurrency: int = 32, quick: bool = False) -> dict[str, Any]:
    if quick:
        return asyncio.run(_main(min(messages, 300), min(concurrency, 8), ("ASYNC_FLUSH",)))
    return asyncio.run(_main(messages, concurrency, ("ASYNC_FLUSH", "SYNC_FLUSH")))
