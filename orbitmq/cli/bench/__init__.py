"""``orbitmq bench <workload>``: benchmarks that print JSON, each measuring its own baseline in the same run.

Each workload's module is imported only when it runs (some load the client SDK, Redis helpers or grpc).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["run_bench"]


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the workload the parsed ``orbitmq bench`` arguments name; its JSON-ready result."""
    w = args.workload
    if w == "store":
        from orbitmq.cli.bench.store import run_store_bench

        return run_store_bench(args.seconds, args.recovery_mib, args.dir)
    if w == "produce":
        from orbitmq.cli.bench.produce import run_produce_bench

        return run_produce_bench(args.messages)
    if w == "rebalance":
        from orbitmq.cli.bench.rebalance import BenchSettings, run_rebalance_bench

        quick = BenchSettings.quick()
        return run_rebalance_bench(
            quick if args.quick else BenchSettings(args.interval, args.window, args.changes)
        )
    if w == "timer":
        from orbitmq.cli.bench.timer import run_timer_bench

        return run_timer_bench(args.count, args.spread, args.quick)
    if w == "offsets":
        from orbitmq.cli.bench.offsets import run_offsets_bench

        return run_offsets_bench(args.groups, args.topics, args.quick)
    if w == "txn":
        from orbitmq.cli.bench.txn import run_txn_bench

        return run_txn_bench(args.messages, args.concurrency, args.quick)
    if w == "pop":
        from orbitmq.cli.bench.pop import run_pop_bench

        return run_pop_bench(
            args.backlog, args.consumers, args.batch, quick=args.quick, redis=not args.no_redis
        )
    if w == "filter":
        from orbitmq.cli.bench.filter import run_filter_bench

        return run_filter_bench(args.messages, args.rounds, args.quick)
    if w == "longpoll":
        from orbitmq.cli.bench.longpoll import LongPollParams, run_longpoll_bench

        return run_longpoll_bench(LongPollParams.quick() if args.quick else LongPollParams())
    if w == "startup":
        from orbitmq.cli.bench.startup import run_startup_bench

        return run_startup_bench(args.runs, args.idle, args.quick)
    if w == "consume":
        from orbitmq.cli.bench.consume import ConsumeBenchParams, run_consume_bench

        params = ConsumeBenchParams(args.backlog, args.rate, args.seconds, args.rounds)
        return run_consume_bench(ConsumeBenchParams.quick() if args.quick else params)
    raise ValueError(f"unknown benchmark workload {w!r}")
