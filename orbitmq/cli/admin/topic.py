"""``orbitmq admin topic create|update|delete|list|route|status``."""

from __future__ import annotations

import argparse
from typing import Any

from orbitmq.admin import DEFAULT_CLUSTER, MESSAGE_TYPES, AdminClient, BrokerTopicChange, TopicSettings
from orbitmq.cli.admin.common import JSON_FLAG, count, fmt_ms, table

__all__ = ["add_parser", "run"]


def add_parser(nouns: Any) -> None:
    topic = nouns.add_parser("topic", help="create, update, delete, list topics; route and status")
    verbs = topic.add_subparsers(dest="verb", required=True)
    queues = count(1, 1024, "queue count")

    create = verbs.add_parser("create", parents=[JSON_FLAG], help="create on every broker of the cluster")
    create.add_argument("name")
    create.add_argument("--queues", type=queues, default=8)
    create.add_argument("--type", choices=MESSAGE_TYPES, default=None, dest="message_type")
    create.add_argument("--cluster", default=DEFAULT_CLUSTER)

    update = verbs.add_parser("update", parents=[JSON_FLAG], help="change queues/type/perm on every broker")
    update.add_argument("name")
    update.add_argument("--queues", type=queues, default=None)
    update.add_argument("--type", choices=MESSAGE_TYPES, default=None, dest="message_type")
    update.add_argument("--perm", type=count(0, 15, "perm (PermName bits: 2 write, 4 read, 6 both)"))
    update.add_argument("--cluster", default=DEFAULT_CLUSTER)

    delete = verbs.add_parser("delete", parents=[JSON_FLAG], help="delete on every broker and the NameServer")
    delete.add_argument("name")
    delete.add_argument("--cluster", default=DEFAULT_CLUSTER)

    verbs.add_parser("list", parents=[JSON_FLAG], help="all topics the NameServer knows")
    route = verbs.add_parser("route", parents=[JSON_FLAG], help="the topic's route (brokers and queues)")
    route.add_argument("name")
    status = verbs.add_parser("status", parents=[JSON_FLAG], help="min/max offset of every queue")
    status.add_argument("name")


def _changes_text(changes: list[BrokerTopicChange]) -> str:
    rows = []
    for c in changes:
        cfg = c.config or {}
        mtype = (cfg.get("attributes") or {}).get("message.type", "NORMAL") if c.config else "-"
        rows.append([c.broker_name, c.broker_addr, c.action, cfg.get("readQueueNums"),
                     cfg.get("writeQueueNums"), cfg.get("perm"), mtype])  # fmt: skip
    return table(["BROKER", "ADDRESS", "ACTION", "READ", "WRITE", "PERM", "TYPE"], rows)


def _route_text(route: dict[str, Any]) -> str:
    addrs = {bd["brokerName"]: (bd.get("brokerAddrs") or {}) for bd in route.get("brokerDatas") or []}
    rows = []
    for qd in sorted(route.get("queueDatas") or [], key=lambda q: str(q["brokerName"])):
        name = qd["brokerName"]
        master = addrs.get(name, {}).get("0", addrs.get(name, {}).get(0, "-"))
        rows.append([name, master, qd["readQueueNums"], qd["writeQueueNums"], qd["perm"]])
    return table(["BROKER", "MASTER", "READ", "WRITE", "PERM"], rows)


async def run(admin: AdminClient, args: argparse.Namespace) -> object:
    """Run the verb; returns what to print (JSON-able with ``--json``, else text)."""
    if args.verb == "list":
        topics = await admin.topic_list()
        return {"topicList": topics} if args.json else "\n".join(["TOPIC", *topics])
    if args.verb == "route":
        route = await admin.topic_route(args.name)
        return route if args.json else _route_text(route)
    if args.verb == "status":
        queues = await admin.topic_status(args.name)
        if args.json:
            return {"topic": args.name, "queues": [q.to_json() for q in queues]}
        rows = [[q.broker_name, q.queue_id, q.min_offset, q.max_offset, q.messages, fmt_ms(q.last_update_ms)]
                for q in queues]  # fmt: skip
        return table(["BROKER", "QUEUE", "MIN", "MAX", "MESSAGES", "LAST-UPDATE"], rows)
    if args.verb == "create":
        changes = await admin.create_topic(
            args.name, queues=args.queues, message_type=args.message_type, cluster=args.cluster
        )
    elif args.verb == "update":
        settings = TopicSettings(queues=args.queues, message_type=args.message_type, perm=args.perm)
        changes = await admin.update_topic(args.name, settings, cluster=args.cluster)
    else:
        changes = await admin.delete_topic(args.name, cluster=args.cluster)
    if args.json:
        return {"topic": args.name, "brokers": [c.to_json() for c in changes]}
    return _changes_text(changes)
