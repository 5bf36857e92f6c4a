"""``orbitmq admin cluster list`` and ``orbitmq admin broker config|update-config``."""

from __future__ import annotations

import argparse
from typing import Any

from orbitmq.admin import AdminClient
from orbitmq.cli.admin.common import JSON_FLAG, key_value, table
from orbitmq.core.errors import ClientError

__all__ = ["add_parsers", "run_broker", "run_cluster"]


def add_parsers(nouns: Any) -> None:
    cluster = nouns.add_parser("cluster", help="brokers with version, TPS and disk usage")
    cverbs = cluster.add_subparsers(dest="verb", required=True)
    listing = cverbs.add_parser("list", parents=[JSON_FLAG], help="every broker the NameServer knows")
    listing.add_argument("--cluster", default=None, help="only this cluster")

    broker = nouns.add_parser("broker", help="a broker's configuration")
    bverbs = broker.add_subparsers(dest="verb", required=True)
    config = bverbs.add_parser("config", parents=[JSON_FLAG], help="show the configuration")
    config.add_argument("--broker", default=None, help="broker name (default: every master)")
    update = bverbs.add_parser(
        "update-config", parents=[JSON_FLAG], help="change run-time keys (see docs/admin.md for the list)"
    )
    update.add_argument("changes", nargs="+", type=key_value, metavar="key=value")
    update.add_argument("--broker", default=None, help="broker name (default: every master)")


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def _tps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


async def run_cluster(admin: AdminClient, args: argparse.Namespace) -> object:
    brokers = await admin.brokers(args.cluster)
    if args.json:
        return {"brokers": [b.to_json() for b in brokers]}
    rows = [[b.cluster, b.broker_name, b.broker_id, b.addr, b.version if not b.error else f"error: {b.error}",
             _tps(b.put_tps), _tps(b.get_tps), _pct(b.disk_ratio)] for b in brokers]  # fmt: skip
    return table(["CLUSTER", "BROKER", "ID", "ADDRESS", "VERSION", "IN-TPS", "OUT-TPS", "DISK-USED"], rows)


async def run_broker(admin: AdminClient, args: argparse.Namespace) -> object:
    brokers = [b for b in await admin.masters() if args.broker is None or b.name == args.broker]
    if not brokers:
        raise ClientError(f"no master broker named {args.broker!r}")
    configs = {}
    for b in brokers:
        if args.verb == "config":
            configs[b.name] = await admin.broker_config(b.addr)
        else:
            configs[b.name] = await admin.update_broker_config(b.addr, dict(args.changes))
    if args.verb == "update-config":
        keys = [k for k, _ in args.changes]
        configs = {name: {k: c.get(k, "") for k in keys} for name, c in configs.items()}
    if args.json:
        return {"brokers": configs}
    rows = [[name, key, value] for name, c in configs.items() for key, value in sorted(c.items())]
    return table(["BROKER", "KEY", "VALUE"], rows)
