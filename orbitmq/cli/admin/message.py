"""``orbitmq admin message by-id|by-key|by-offset|send``."""

from __future__ import annotations

import argparse
from typing import Any

from orbitmq.admin import AdminClient, FoundMessage
from orbitmq.cli.admin.common import JSON_FLAG, fmt_ms, non_negative, table
from orbitmq.core.errors import ClientError

__all__ = ["add_parser", "run"]

_BODY_PREVIEW = 60


def add_parser(nouns: Any) -> None:
    message = nouns.add_parser(
        "message", help="find messages (by id, key, queue offset); send a test message"
    )
    verbs = message.add_subparsers(dest="verb", required=True)

    by_id = verbs.add_parser("by-id", parents=[JSON_FLAG], help="by offset message id or client message id")
    by_id.add_argument("id")
    by_id.add_argument("--topic", default=None, help="needed for a client (UNIQ_KEY) message id")

    by_key = verbs.add_parser("by-key", parents=[JSON_FLAG], help="messages whose KEYS contain KEY")
    by_key.add_argument("topic")
    by_key.add_argument("key")

    by_offset = verbs.add_parser("by-offset", parents=[JSON_FLAG], help="the message at a queue offset")
    by_offset.add_argument("topic")
    by_offset.add_argument("--queue", type=non_negative, required=True)
    by_offset.add_argument("--offset", type=non_negative, required=True)
    by_offset.add_argument("--broker", default=None, help="broker name (needed when several serve the topic)")

    send = verbs.add_parser("send", parents=[JSON_FLAG], help="send one test message")
    send.add_argument("topic")
    send.add_argument("body")
    send.add_argument("--tags", default=None)
    send.add_argument("--keys", nargs="*", default=[], help="message keys")
    send.add_argument("--queue", type=non_negative, default=None, help="queue id (default: round robin)")


def _found_text(found: list[FoundMessage]) -> str:
    if not found:
        return "no message found"
    rows = []
    for f in found:
        m = f.message
        body = m.body.decode("utf-8", errors="replace").replace("\n", "\\n")
        body = body if len(body) <= _BODY_PREVIEW else body[: _BODY_PREVIEW - 3] + "..."
        rows.append([m.msg_id, m.topic, f.broker_name, m.queue_id, m.queue_offset, m.tags, " ".join(m.keys),
                     fmt_ms(m.store_timestamp), body])  # fmt: skip
    return table(["MSG-ID", "TOPIC", "BROKER", "QUEUE", "OFFSET", "TAGS", "KEYS", "STORED", "BODY"], rows)


async def run(admin: AdminClient, args: argparse.Namespace) -> object:
    if args.verb == "send":
        sent = await admin.send_test_message(
            args.topic, args.body.encode(), tags=args.tags, keys=args.keys, queue_id=args.queue
        )
        if args.json:
            return sent.to_json()
        return table(["MSG-ID", "OFFSET-MSG-ID", "BROKER", "QUEUE", "OFFSET", "STATUS"],
                     [[sent.msg_id, sent.offset_msg_id, sent.broker_name, sent.queue_id, sent.queue_offset,
                       sent.status]])  # fmt: skip
    if args.verb == "by-id":
        found = await admin.message_by_id(args.id, args.topic)
    elif args.verb == "by-key":
        found = await admin.messages_by_key(args.topic, args.key)
    else:
        broker = args.broker
        if broker is None:
            serving = [b.name for b, _ in await admin.topic_masters(args.topic)]
            if len(serving) != 1:
                raise ClientError(f"{args.topic} is served by {', '.join(serving)}: give --broker")
            broker = serving[0]
        found = [await admin.message_at(args.topic, broker, args.queue, args.offset)]
    return {"messages": [f.to_json() for f in found]} if args.json else _found_text(found)
