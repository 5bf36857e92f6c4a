"""``orbitmq admin group create|update|delete|list|describe``."""

from __future__ import annotations

import argparse
from typing import Any

from orbitmq.admin import DEFAULT_CLUSTER, AdminClient, GroupChange, GroupDescription, GroupSettings
from orbitmq.cli.admin.common import JSON_FLAG, count, fmt_ms, table

__all__ = ["add_parser", "run"]


def _bool(text: str) -> bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_parser(nouns: Any) -> None:
    group = nouns.add_parser("group", help="consumer groups: create, update, delete, list, describe")
    verbs = group.add_subparsers(dest="verb", required=True)
    retry = count(0, 10_000, "retry maximum")

    create = verbs.add_parser("create", parents=[JSON_FLAG], help="create on every broker of the cluster")
    create.add_argument("name")
    create.add_argument("--fifo", action="store_true", help="orderly (FIFO) consumption")
    create.add_argument("--retry-max", type=retry, default=16, help="deliveries before the DLQ (default 16)")
    create.add_argument("--cluster", default=DEFAULT_CLUSTER)

    update = verbs.add_parser("update", parents=[JSON_FLAG], help="change settings on every broker")
    update.add_argument("name")
    fifo = update.add_mutually_exclusive_group()
    fifo.add_argument("--fifo", action="store_true", default=None, help="make it orderly (FIFO)")
    fifo.add_argument("--no-fifo", action="store_false", dest="fifo", help="make it concurrent")
    update.add_argument("--retry-max", type=retry, default=None)
    update.add_argument("--consume-enable", type=_bool, default=None, metavar="true|false")
    update.add_argument("--cluster", default=DEFAULT_CLUSTER)

    delete = verbs.add_parser("delete", parents=[JSON_FLAG], help="delete on every broker of the cluster")
    delete.add_argument("name")
    delete.add_argument("--clean-offsets", action="store_true", help="also forget its committed offsets")
    delete.add_argument("--cluster", default=DEFAULT_CLUSTER)

    listing = verbs.add_parser("list", parents=[JSON_FLAG], help="every group of every broker")
    listing.add_argument("--cluster", default=None)
    describe = verbs.add_parser("describe", parents=[JSON_FLAG], help="members, subscriptions, lag per queue")
    describe.add_argument("name")


def _changes_text(changes: list[GroupChange]) -> str:
    rows = [[c.broker_name, c.broker_addr, c.action,
             (c.config or {}).get("consumeMessageOrderly", "-"), (c.config or {}).get("retryMaxTimes", "-")]
            for c in changes]  # fmt: skip
    return table(["BROKER", "ADDRESS", "ACTION", "FIFO", "RETRY-MAX"], rows)


def describe_text(d: GroupDescription) -> str:
    online = f"{len(d.members)} member(s), {d.mode}, {d.consume_from_where}" if d.members else "not online"
    parts = [f"group {d.group}: {online}; total lag {d.total_lag}"]
    if d.members:
        parts.append(table(["CLIENT-ID", "ADDRESSES", "LANGUAGE", "VERSION", "BROKERS"],
                           [[m.client_id, ",".join(m.addresses), m.language, m.version, ",".join(m.brokers)]
                            for m in d.members]))  # fmt: skip
    if d.subscriptions:
        parts.append(table(["TOPIC", "EXPRESSION"], sorted(d.subscriptions.items())))
    rows = [[q.topic, q.broker_name, q.queue_id, q.broker_offset, q.consumer_offset, q.lag,
             fmt_ms(q.last_timestamp)] for q in d.lags]  # fmt: skip
    parts.append(table(["TOPIC", "BROKER", "QUEUE", "BROKER-OFFSET", "CONSUMER-OFFSET", "LAG", "LAST-CONSUMED"],
                       rows))  # fmt: skip
    return "\n\n".join(parts)


async def run(admin: AdminClient, args: argparse.Namespace) -> object:
    if args.verb == "list":
        groups = await admin.group_list(args.cluster)
        if args.json:
            return {"groups": groups}
        rows = [[name, c.get("consumeMessageOrderly"), c.get("retryMaxTimes"), c.get("consumeEnable"),
                 ",".join(c["brokers"])] for name, c in groups.items()]  # fmt: skip
        return table(["GROUP", "FIFO", "RETRY-MAX", "CONSUME-ENABLE", "BROKERS"], rows)
    if args.verb == "describe":
        desc = await admin.describe_group(args.name)
        return desc.to_json() if args.json else describe_text(desc)
    if args.verb == "create":
        changes = await admin.create_group(
            args.name, fifo=args.fifo, retry_max=args.retry_max, cluster=args.cluster
        )
    elif args.verb == "update":
        settings = GroupSettings(fifo=args.fifo, retry_max=args.retry_max, consume_enable=args.consume_enable)
        changes = await admin.update_group(args.name, settings, cluster=args.cluster)
    else:
        changes = await admin.delete_group(args.name, clean_offsets=args.clean_offsets, cluster=args.cluster)
    if args.json:
        return {"group": args.name, "brokers": [c.to_json() for c in changes]}
    return _changes_text(changes)
