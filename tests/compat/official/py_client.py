"""Drive the official ``rocketmq-python-client`` 5.1.2 as a separate process for the compat tests.

Run: ``python py_client.py '<json config>'``. The config names the role and what the client is built with;
after start-up the script prints ``{"event": "started"}`` and then reads one JSON command per line on
stdin, answering each on stdout with an event carrying the command's ``id`` (``{"event": "error", "id":
..., "error": ...}`` when the client raised). stdout carries only JSON events, one per line.

Config: ``endpoints`` (host:port of the proxy), ``role`` (producer | simple | push), ``topics`` (list),
``group`` (consumers), ``await_s`` (simple consumer long polling, default 5), ``request_timeout_s``,
``checker`` (producer: "commit" | "rollback" answer of the transaction checker; checks are reported as
``{"event": "checked", ...}``), ``fail`` (push: ``{"body_matches": regex, "times": n}`` answers FAILURE for
matching messages that many times), ``tag`` (consumers' filter expression, default ``*``).

Commands: ``send`` (topic, body, tag?, keys?, message_group?, delay_s?, properties?) → ``sent``;
``send_tx`` (topic, body, resolution: commit | rollback | none) → ``sent_tx``; ``receive`` (max, invisible_s)
→ ``received`` (messages); ``ack`` (message_id) → ``acked``; ``change`` (message_id, invisible_s) →
``changed``; ``shutdown`` → ``closed`` (then the process exits 0). Push consumers print ``msg`` events.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import traceback
from typing import Any

from rocketmq import (
    ClientConfiguration,
    ConsumeResult,
    Credentials,
    FilterExpression,
    Message,
    MessageListener,
    Producer,
    PushConsumer,
    SimpleConsumer,
    TransactionChecker,
    TransactionResolution,
)

_print_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def describe(m: Any) -> dict[str, Any]:
    return {
        "message_id": m.message_id,
        "topic": m.topic,
        "body": m.body.decode("utf-8", "replace"),
        "tag": m.tag,
        "keys": list(m.keys or []),
        "properties": dict(m.properties or {}),
        "message_group": m.message_group,
        "delivery_attempt": m.delivery_attempt,
        "delivery_timestamp": m.delivery_timestamp,
        "born_timestamp": m.born_timestamp,
        "corrupted": m.corrupted,
        "received_at_ms": int(time.time() * 1000),
    }


class Checker(TransactionChecker):
    def __init__(self, answer: str) -> None:
        self.answer = answer

    def check(self, message: Any) -> Any:
        emit("checked", message=describe(message))
        return TransactionResolution.COMMIT if self.answer == "commit" else TransactionResolution.ROLLBACK


class Listener(MessageListener):
    def __init__(self, fail: dict[str, Any] | None) -> None:
        self.fail = fail or {}
        self.failures: dict[str, int] = {}
        self.lock = threading.Lock()

    def consume(self, message: Any) -> Any:
        info = describe(message)
        pattern = self.fail.get("body_matches")
        if pattern and re.search(pattern, info["body"]):
            with self.lock:
                n = self.failures.get(info["message_id"], 0)
                if n < int(self.fail.get("times", 1)):
                    self.failures[info["message_id"]] = n + 1
                    emit("msg", failed=True, **info)
                    return ConsumeResult.FAILURE
        emit("msg", failed=False, **info)
        return ConsumeResult.SUCCESS


def build(cfg: dict[str, Any]) -> Any:
    conf = ClientConfiguration(
        cfg["endpoints"], Credentials(), request_timeout=cfg.get("request_timeout_s", 3)
    )
    role = cfg["role"]
    tag = cfg.get("tag", "*")
    if role == "producer":
        checker = Checker(cfg["checker"]) if cfg.get("checker") else None
        return Producer(conf, tuple(cfg.get("topics", ())), checker)
    subs = {t: FilterExpression(tag) for t in cfg["topics"]}
    if role == "simple":
        return SimpleConsumer(conf, cfg["group"], subs, await_duration=cfg.get("await_s", 5))
    if role == "push":
        return PushConsumer(conf, cfg["group"], Listener(cfg.get("fail")), subs)
    raise ValueError(f"unknown role {role!r}")


def message(cmd: dict[str, Any]) -> Any:
    m = Message()
    m.topic = cmd["topic"]
    m.body = cmd.get("body", "").encode()
    if cmd.get("tag"):
        m.tag = cmd["tag"]
    for key in cmd.get("keys") or ():
        m.keys = key  # the 5.1.2 setter adds one key per assignment
    if cmd.get("message_group"):
        m.message_group = cmd["message_group"]
    if cmd.get("delay_s") is not None:
        m.delivery_timestamp = int(time.time()) + int(cmd["delay_s"])  # whole seconds, as 5.1.2 expects
    for k, v in (cmd.get("properties") or {}).items():
        m.add_property(k, v)
    return m


def run(client: Any, cmd: dict[str, Any], received: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    op = cmd["cmd"]
    if op == "send":
        receipt = client.send(message(cmd))
        return "sent", {
            "message_id": receipt.message_id,
            "offset": receipt.offset,
            "sent_at_ms": int(time.time() * 1000),
        }
    if op == "send_tx":
        tx = client.begin_transaction()
        receipt = client.send(message(cmd), tx)
        if cmd["resolution"] == "commit":
            tx.commit()
        elif cmd["resolution"] == "rollback":
            tx.rollback()
        return "sent_tx", {"message_id": receipt.message_id, "transaction_id": receipt.transaction_id}
    if op == "receive":
        msgs = client.receive(cmd.get("max", 16), cmd.get("invisible_s", 15))
        for m in msgs:
            received[m.message_id] = m
        return "received", {"messages": [describe(m) for m in msgs]}
    if op == "ack":
        client.ack(received.pop(cmd["message_id"]))
        return "acked", {"message_id": cmd["message_id"]}
    if op == "change":
        client.change_invisible_duration(received[cmd["message_id"]], cmd["invisible_s"])
        return "changed", {"message_id": cmd["message_id"]}
    raise ValueError(f"unknown command {op!r}")


def main() -> int:
    cfg = json.loads(sys.argv[1])
    client = build(cfg)
    client.startup()
    emit("started", client=str(client))
    received: dict[str, Any] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "shutdown":
            break
        try:
            name, fields = run(client, cmd, received)
            emit(name, id=cmd.get("id"), **fields)
        except Exception as exc:
            emit(
                "error", id=cmd.get("id"), error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc()
            )
    client.shutdown()
    emit("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
