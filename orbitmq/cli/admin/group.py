"""``orbitmq admin group create|update|delete|list|describe|mode``."""

from __future__ import annotations

import argparse
from typing import Any

from orbitmq.admin import (
    DEFAULT_CLUSTER,
    REQUEST_MODES,
    AdminClient,
    GroupChange,
    GroupDescription,
    GroupModes,
    GroupSettings,
)
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
    _add_mode_parser(verbs)


def _add_mode_parser(verbs: Any) -> None:
    """``group mode set NAME --topic T --mode PULL|POP [--share N]`` and ``group mode show NAME``
    (docs/pop-rebalance.md)."""
    mode = verbs.add_parser("mode", help="per-topic request mode (PULL or POP) of the group")
    mode_verbs = mode.add_subparsers(dest="mode_verb", required=True)
    put = mode_verbs.add_parser("set", parents=[JSON_FLAG], help="set a topic's mode on every broker")
    put.add_argument("name")
    put.add_argument("--topic", required=True)
    put.add_argument("--mode", required=True, choices=REQUEST_MODES)
    put.add_argument("--share", type=count(-1, 10_000, "popShareQueueNum"), default=0, dest="share",
                     help="POP: popShareQueueNum (≤ 0: every member pops every queue; default 0)")  # fmt: skip
    put.add_argument("--cluster", default=DEFAULT_CLUSTER)
    show = mode_verbs.add_parser("show", parents=[JSON_FLAG], help="the modes every broker holds")
    show.add_argument("name")
    show.add_argument("--cluster", default=None)


def _modes_text(modes: GroupModes) -> str:
    rows = [[t, b.broker_name, *b.modes[t], "" if modes.consistent(t) else "brokers differ"]
            for t in modes.topics() for b in modes.brokers if t in b.modes]  # fmt: skip
    defaults = ", ".join(f"{b.broker_name} {b.default_mode}" for b in modes.brokers)
    listing = table(["TOPIC", "BROKER", "MODE", "POP-SHARE", "NOTE"], rows)
    return f"{listing}\n\nother topics: the broker default ({defaults})"


async def _mode(admin: AdminClient, args: argparse.Namespace) -> object:
    if args.mode_verb == "show":
        modes = await admin.request_modes(args.name, args.cluster)
        return modes.to_json() if args.json else _modes_text(modes)
    changes = await admin.set_request_mode(
        args.name, args.topic, args.mode, pop_share_queue_num=args.share, cluster=args.cluster
    )
    if args.json:
        return {"group": args.name, "brokers": [c.to_json() for c in changes]}
    rows = [[c.broker_name, c.broker_addr, c.topic, c.mode, c.pop_share_queue_num] for c in changes]
    return table(["BROKER", "ADDRESS", "TOPIC", "MODE", "POP-SHARE"], rows)


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
    if args.verb == "mode":
        return await _mode(admin, args)
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
