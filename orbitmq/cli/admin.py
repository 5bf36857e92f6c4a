"""``orbitmq admin --namesrv H:P topic create|update|delete|list|route ...``

Readable tables by default, ``--json`` for scripts. Exit codes: 0 success, 1 a server or connection error
(the response code's name and the server's remark are printed), 2 a usage error (argparse's own exit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from orbitmq.admin import DEFAULT_CLUSTER, MESSAGE_TYPES, AdminClient, BrokerTopicChange, TopicSettings
from orbitmq.core.errors import BrokerError, OrbitError
from orbitmq.protocol.codes import ResponseCode

__all__ = ["add_admin_parser", "run_admin"]


def _queues(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1024:
        raise argparse.ArgumentTypeError(f"queue count must be 1..1024, got {value}")
    return value


def _perm(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 15:
        raise argparse.ArgumentTypeError(f"perm is PermName bits (2 write, 4 read, 6 both), got {value}")
    return value


def add_admin_parser(sub: Any) -> None:
    """Add ``admin`` to the top-level sub-parsers ``sub``."""
    admin = sub.add_parser("admin", help="administer a running cluster")
    admin.add_argument("--namesrv", required=True, help="NameServer address(es), host:port[;host:port]")
    admin.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    nouns = admin.add_subparsers(dest="noun", required=True)
    topic = nouns.add_parser("topic", help="create, update, delete, list topics, show a route")
    verbs = topic.add_subparsers(dest="verb", required=True)

    create = verbs.add_parser("create", help="create the topic on every broker of the cluster")
    create.add_argument("name")
    create.add_argument("--queues", type=_queues, default=8)
    create.add_argument("--type", choices=MESSAGE_TYPES, default=None, dest="message_type")
    create.add_argument("--cluster", default=DEFAULT_CLUSTER)

    update = verbs.add_parser("update", help="change queues/type/perm on every broker of the cluster")
    update.add_argument("name")
    update.add_argument("--queues", type=_queues, default=None)
    update.add_argument("--type", choices=MESSAGE_TYPES, default=None, dest="message_type")
    update.add_argument("--perm", type=_perm, default=None)
    update.add_argument("--cluster", default=DEFAULT_CLUSTER)

    delete = verbs.add_parser("delete", help="delete on every broker of the cluster and the NameServer")
    delete.add_argument("name")
    delete.add_argument("--cluster", default=DEFAULT_CLUSTER)

    verbs.add_parser("list", help="all topics the NameServer knows")
    route = verbs.add_parser("route", help="the topic's route (brokers and queues)")
    route.add_argument("name")
    for p in (create, update, delete, verbs.choices["list"], route):
        p.add_argument("--json", action="store_true", help="machine-readable output")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, headers)), *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _changes_text(changes: list[BrokerTopicChange]) -> str:
    rows = []
    for c in changes:
        cfg = c.config or {}
        mtype = (cfg.get("attributes") or {}).get("message.type", "NORMAL") if c.config else "-"
        rows.append([c.broker_name, c.broker_addr, c.action, cfg.get("readQueueNums", "-"),
                     cfg.get("writeQueueNums", "-"), cfg.get("perm", "-"), mtype])  # fmt: skip
    return _table(["BROKER", "ADDRESS", "ACTION", "READ", "WRITE", "PERM", "TYPE"], rows)


def _route_text(route: dict[str, Any]) -> str:
    addrs = {bd["brokerName"]: (bd.get("brokerAddrs") or {}) for bd in route.get("brokerDatas") or []}
    rows = []
    for qd in sorted(route.get("queueDatas") or [], key=lambda q: str(q["brokerName"])):
        name = qd["brokerName"]
        master = addrs.get(name, {}).get("0", addrs.get(name, {}).get(0, "-"))
        rows.append([name, master, qd["readQueueNums"], qd["writeQueueNums"], qd["perm"]])
    return _table(["BROKER", "MASTER", "READ", "WRITE", "PERM"], rows)


async def _topic(args: argparse.Namespace) -> object:
    """Run the verb; returns what to print (a JSON-able value, or text when not ``--json``)."""
    async with AdminClient(args.namesrv, timeout_s=args.timeout) as admin:
        if args.verb == "create":
            changes = await admin.create_topic(
                args.name, queues=args.queues, message_type=args.message_type, cluster=args.cluster
            )
        elif args.verb == "update":
            settings = TopicSettings(queues=args.queues, message_type=args.message_type, perm=args.perm)
            changes = await admin.update_topic(args.name, settings, cluster=args.cluster)
        elif args.verb == "delete":
            changes = await admin.delete_topic(args.name, cluster=args.cluster)
        elif args.verb == "list":
            topics = await admin.topic_list()
            return {"topicList": topics} if args.json else "\n".join(["TOPIC", *topics])
        else:
            route = await admin.topic_route(args.name)
            return route if args.json else _route_text(route)
    if args.json:
        return {"topic": args.name, "brokers": [c.to_json() for c in changes]}
    return _changes_text(changes)


def _code_name(code: int) -> str:
    try:
        return ResponseCode(code).name
    except ValueError:
        return f"CODE_{code}"


def run_admin(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_topic(args))
    except BrokerError as exc:
        print(f"orbitmq admin: {_code_name(exc.code)} ({exc.code}): {exc.remark}", file=sys.stderr)
        return 1
    except OrbitError as exc:
        print(f"orbitmq admin: {exc}", file=sys.stderr)
        return 1
    print(result if isinstance(result, str) else json.dumps(result, indent=2))
    return 0
