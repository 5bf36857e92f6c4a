"""``orbitmq admin --namesrv H:P <noun> <verb> ...``: topic, group, offset, message, cluster, broker.

Readable tables by default, ``--json`` (after the verb) for scripts. Exit codes: 0 success; 1 a server or
connection error (the response code's name and the server's remark are printed), or an import/sync that
could not set every queue; 2 a usage error (argparse's own exit). ``--namesrv`` defaults to the
``NAMESRV_ADDR`` environment variable, as upstream's mqadmin does. Every command is shown with an example
in ``docs/admin.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from orbitmq.admin import AdminClient
from orbitmq.cli.admin import cluster, group, message, offset, topic
from orbitmq.cli.admin.common import Outcome
from orbitmq.core.errors import BrokerError, OrbitError
from orbitmq.protocol.codes import ResponseCode

__all__ = ["add_admin_parser", "execute", "run_admin"]

_Runner = Callable[[AdminClient, argparse.Namespace], Awaitable[object]]
_RUNNERS: dict[str, _Runner] = {
    "topic": topic.run,
    "group": group.run,
    "offset": offset.run,
    "message": message.run,
    "cluster": cluster.run_cluster,
    "broker": cluster.run_broker,
}


def add_admin_parser(sub: Any) -> None:
    """Add ``admin`` to the top-level sub-parsers ``sub``."""
    admin = sub.add_parser("admin", help="administer a running cluster")
    admin.add_argument(
        "--namesrv",
        default=os.environ.get("NAMESRV_ADDR"),
        help="NameServer address(es), host:port[;host:port] (default: $NAMESRV_ADDR)",
    )
    admin.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    nouns = admin.add_subparsers(dest="noun", required=True)
    topic.add_parser(nouns)
    group.add_parser(nouns)
    offset.add_parser(nouns)
    message.add_parser(nouns)
    cluster.add_parsers(nouns)


def _code_name(code: int) -> str:
    try:
        return ResponseCode(code).name
    except ValueError:
        return f"CODE_{code}"


async def _run(args: argparse.Namespace) -> object:
    namesrv = args.namesrv
    if args.noun == "offset" and args.verb == "sync":
        namesrv = args.from_namesrv or namesrv
    async with AdminClient(namesrv, timeout_s=args.timeout) as admin:
        return await _RUNNERS[args.noun](admin, args)


async def execute(args: argparse.Namespace) -> tuple[int, str, str]:
    """Run a parsed ``admin`` command: (exit code, stdout text, stderr text). The servers may run on the
    caller's event loop (tests run the documented examples this way)."""
    sync_source = args.noun == "offset" and args.verb == "sync" and args.from_namesrv
    if not args.namesrv and not sync_source:
        return 2, "", "orbitmq admin: --namesrv (or NAMESRV_ADDR) is required"
    try:
        result = await _run(args)
    except BrokerError as exc:
        return 1, "", f"orbitmq admin: {_code_name(exc.code)} ({exc.code}): {exc.remark}"
    except OrbitError as exc:
        return 1, "", f"orbitmq admin: {exc}"
    outcome = result if isinstance(result, Outcome) else Outcome(result)
    value = outcome.value
    return outcome.exit_code, value if isinstance(value, str) else json.dumps(value, indent=2), ""


def run_admin(args: argparse.Namespace) -> int:
    code, out, err = asyncio.run(execute(args))
    if out:
        print(out)
    if err:
        print(err, file=sys.stderr)
    return code
