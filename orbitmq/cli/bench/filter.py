"""``orbitmq bench filter``: what a SQL92 subscription costs per message, against a tag subscription.

Measured in the same run, on the same messages (random property values, so nothing is cached):

- **predicate**: the filter alone on decoded properties. Baseline: the tag-hash filter (the consume-queue
  check of a tag subscription, ``code in {codes}``) and the tag filter's exact ``TAGS`` check. Each SQL92
  shape is reported in ns per message and as a multiple of the tag-hash cost.
- **read**: ``get_messages`` through a memory store, 32 per read, with no filter, a tag subscription and
  SQL92 subscriptions, so the cost of decoding each record's properties (which SQL92 needs and the tag-hash
  filter does not) is included. Reported in messages read per second and relative to the tag subscription.
- **compile**: parse + compile time per expression (paid once per subscription, then cached).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from orbitmq.broker.filters import MessageFilter, MessageFilterFactory, build_subscription
from orbitmq.broker.sql92 import compile_sql92
from orbitmq.cli.bench.common import machine, rate, timer
from orbitmq.protocol.record import java_string_hash
from orbitmq.store import MemoryMessageStore, MessageToStore, StoreConfig

__all__ = ["EXPRESSIONS", "run_filter_bench"]

#: The SQL92 shapes measured (each selects about half of the messages, as the tag baseline does).
EXPRESSIONS: dict[str, str] = {
    "one comparison": "price > 50",
    "comparison AND equality": "price > 25 AND region = 'eu'",
    "IN list of 8": "region IN ('eu', 'ap', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6')",
    "string equality": "region = 'eu'",
    "five-clause": "(price BETWEEN 10 AND 90 OR vip = TRUE) AND region <> 'us' AND sku IS NOT NULL "
    "AND name CONTAINS 'a'",
}
TAGS = ("TagA", "TagB")
REGIONS = ("eu", "us", "ap", "sa")


def _messages(n: int, seed: int) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [
        {
            "TAGS": TAGS[i % 2],
            "KEYS": f"order-{i}",
            "UNIQ_KEY": f"7F00000100002A9F0000{i:012X}",
            "WAIT": "true",
            "price": str(rnd.randrange(100)),
            "region": rnd.choice(REGIONS),
            "vip": rnd.choice(("true", "false")),
            "sku": f"sku-{rnd.randrange(10**6)}",
            "name": "".join(rnd.choice(letters) for _ in range(6)),
        }
        for i in range(n)
    ]


def _ns_per_call(fn: Callable[[Any], object], inputs: list[Any], rounds: int) -> float:
    """Best of ``rounds`` passes over ``inputs`` (the least disturbed by other work), in ns per call."""
    best = float("inf")
    for _ in range(rounds):
        start = timer()
        for x in inputs:
            fn(x)
        best = min(best, timer() - start)
    return best / len(inputs) * 1e9


def predicate_costs(messages: list[dict[str, str]], rounds: int) -> dict[str, Any]:
    codes = frozenset({java_string_hash("TagA")})
    tag_codes = [java_string_hash(m["TAGS"]) for m in messages]
    tags = frozenset({"TagA"})
    baseline = _ns_per_call(codes.__contains__, tag_codes, rounds)
    exact = _ns_per_call(lambda p: p.get("TAGS") in tags, messages, rounds)
    sql: dict[str, Any] = {}
    for label, expr in EXPRESSIONS.items():
        f = compile_sql92(expr)
        ns = _ns_per_call(f.matches, messages, rounds)
        selected = sum(f.matches(m) for m in messages) / len(messages)
        sql[label] = {
            "expression": expr,
            "ns_per_message": round(ns, 1),
            "x_tag_hash": round(ns / baseline, 1),
            "selected": round(selected, 3),
        }
    return {
        "tag_hash_ns_per_message": round(baseline, 1),
        "tag_exact_ns_per_message": round(exact, 1),
        "sql92": sql,
    }


async def _read_rate(store: MemoryMessageStore, n: int, flt: MessageFilter, rounds: int) -> tuple[float, int]:
    best, got = float("inf"), 0
    for _ in range(rounds):
        offset, got = 0, 0
        start = timer()
        while offset < n:
            res = store.get_messages(
                "Bench", 0, offset, 32, tag_filter=flt.tag_filter, record_filter=flt.record_filter
            )
            got += len(res.buffers)
            offset = res.next_begin_offset
        best = min(best, timer() - start)
    return rate(n, best), got


async def read_costs(messages: list[dict[str, str]], rounds: int) -> dict[str, Any]:
    store = MemoryMessageStore(StoreConfig(store_path_root_dir="/nonexistent-memory-store"))
    await store.start()
    try:
        await store.put_messages([MessageToStore("Bench", 0, b"x" * 256, dict(m)) for m in messages])
        factory = MessageFilterFactory(enable_property_filter=True)
        filters = {
            "none": MessageFilter(),
            "tag": factory.build(build_subscription("Bench", "TagA")),
            **{
                f"sql92: {label}": factory.build(build_subscription("Bench", expr, "SQL92"))
                for label, expr in EXPRESSIONS.items()
            },
        }
        out: dict[str, Any] = {}
        for label, flt in filters.items():
            per_s, got = await _read_rate(store, len(messages), flt, rounds)
            out[label] = {"messages_scanned_per_s": round(per_s), "returned": got}
        tag_rate = out["tag"]["messages_scanned_per_s"]
        for row in out.values():
            row["vs_tag"] = round(row["messages_scanned_per_s"] / tag_rate, 2)
        return out
    finally:
        await store.stop()


def compile_costs(rounds: int) -> dict[str, float]:
    out = {}
    for label, expr in EXPRESSIONS.items():
        start = timer()
        for _ in range(rounds):
            compile_sql92(expr)
        out[label] = round((timer() - start) / rounds * 1e6, 1)
    return out


def run_filter_bench(messages: int = 20_000, rounds: int = 5, quick: bool = False) -> dict[str, Any]:
    if quick:
        messages, rounds = 500, 1
    sample = _messages(messages, seed=8)
    return {
        "workload": "filter",
        "machine": machine(),
        "messages": messages,
        "rounds": rounds,
        "predicate": predicate_costs(sample, rounds),
        "read": asyncio.run(read_costs(sample, rounds)),
        "compile_us": compile_costs(max(1, rounds * 4)),
    }
