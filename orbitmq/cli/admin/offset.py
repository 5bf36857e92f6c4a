"""``orbitmq admin offset show|reset|export|import|sync``.

``import`` and ``sync`` print one row per target queue; a queue that could not be set (topic or broker
missing on the target, group refused) is listed with the reason and makes the exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from orbitmq.admin import AdminClient, OffsetChange, export_document, parse_document
from orbitmq.cli.admin.common import JSON_FLAG, Outcome, fmt_ms, non_negative, table
from orbitmq.core.errors import ClientError

__all__ = ["add_parser", "run"]


def _timestamp(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--timestamp takes epoch milliseconds (negative = the end), got {text!r}"
        ) from None


def add_parser(nouns: Any) -> None:
    offset = nouns.add_parser("offset", help="consumer offsets: show, reset, export, import, sync")
    verbs = offset.add_subparsers(dest="verb", required=True)

    show = verbs.add_parser("show", parents=[JSON_FLAG], help="committed offset and lag per queue")
    show.add_argument("--group", required=True)
    show.add_argument("--topic", default=None)

    reset = verbs.add_parser("reset", parents=[JSON_FLAG], help="move a group's offsets (persisted at once)")
    reset.add_argument("--group", required=True)
    reset.add_argument("--topic", required=True)
    where = reset.add_mutually_exclusive_group(required=True)
    where.add_argument("--timestamp", type=_timestamp, metavar="EPOCH_MS",
                       help="first message stored at or after this time (negative: the end)")  # fmt: skip
    where.add_argument("--offset", type=non_negative, metavar="N", help="this queue offset")
    reset.add_argument("--queue", type=non_negative, default=None, metavar="Q", help="only this queue id")
    reset.add_argument("--broker", default=None, help="only this broker (name)")

    export = verbs.add_parser("export", help="write committed offsets as JSON (stdout or --output)")
    export.add_argument("--group", action="append", default=None, help="only these groups (repeatable)")
    export.add_argument("--output", "-o", default=None, metavar="FILE")

    imp = verbs.add_parser("import", parents=[JSON_FLAG], help="apply an export to this cluster")
    imp.add_argument("file", help="an export document ('-' = stdin)")
    imp.add_argument("--by-timestamp", action="store_true", help="map positions by time, not by offset")
    imp.add_argument("--dry-run", action="store_true", help="report without changing anything")

    sync = verbs.add_parser(
        "sync", parents=[JSON_FLAG], help="export from one cluster, import by time into another"
    )
    sync.add_argument("--from-namesrv", default=None, metavar="H:P", help="source (default: --namesrv)")
    sync.add_argument("--to-namesrv", required=True, metavar="H:P", help="target NameServer(s)")
    sync.add_argument("--group", action="append", default=None, help="only these groups (repeatable)")
    sync.add_argument("--dry-run", action="store_true", help="report without changing anything")


def _changes(changes: list[OffsetChange], as_json: bool) -> Outcome:
    code = 1 if any(c.skipped for c in changes) else 0
    if as_json:
        return Outcome({"changes": [c.to_json() for c in changes]}, code)
    rows = [[c.group, c.topic, c.broker_name, c.queue_id, c.old, c.new, c.how] for c in changes]
    text = table(["GROUP", "TOPIC", "BROKER", "QUEUE", "OLD", "NEW", "HOW"], rows)
    skipped = sum(c.skipped for c in changes)
    return Outcome(text + (f"\n{skipped} queue(s) not set" if skipped else ""), code)


def _read_document(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError(f"{path} is not JSON: {exc}") from exc


async def run(admin: AdminClient, args: argparse.Namespace) -> object:
    if args.verb == "show":
        lags = await admin.show_offsets(args.group, args.topic)
        if args.json:
            return {"group": args.group, "queues": [q.to_json() for q in lags]}
        rows = [[q.topic, q.broker_name, q.queue_id, q.broker_offset, q.consumer_offset, q.lag,
                 fmt_ms(q.last_timestamp)] for q in lags]  # fmt: skip
        return table(
            ["TOPIC", "BROKER", "QUEUE", "BROKER-OFFSET", "CONSUMER-OFFSET", "LAG", "LAST-CONSUMED"], rows
        )
    if args.verb == "reset":
        results = await admin.reset_offset(args.group, args.topic, timestamp=args.timestamp, offset=args.offset,
                                           queue=args.queue, broker=args.broker)  # fmt: skip
        if args.json:
            return {"group": args.group, "topic": args.topic, "queues": [r.to_json() for r in results]}
        return table(
            ["BROKER", "QUEUE", "NEW-OFFSET"], [[r.broker_name, r.queue_id, r.offset] for r in results]
        )
    if args.verb == "export":
        entries = await admin.export_offsets(args.group)
        doc = export_document(entries, int(time.time() * 1000), ";".join(admin.namesrv_addrs))
        text = json.dumps(doc, indent=2)
        if args.output is None:
            return text
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        return f"wrote {len(entries)} offsets to {args.output}"
    if args.verb == "import":
        entries = parse_document(_read_document(args.file))
        changes = await admin.import_offsets(entries, by_timestamp=args.by_timestamp, dry_run=args.dry_run)
        return _changes(changes, args.json)
    # sync: the source is --from-namesrv (or --namesrv), the target --to-namesrv
    async with AdminClient(args.to_namesrv, timeout_s=args.timeout) as target:
        entries = await admin.export_offsets(args.group)
        changes = await target.import_offsets(entries, by_timestamp=True, dry_run=args.dry_run)
    return _changes(changes, args.json)
