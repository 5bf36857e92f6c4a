"""The wire bodies request-mode tracking reads: the mode table (402 answer), the assignment (400 answer)
and the mode-change push (403); each parser raises ProtocolError on a malformed body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orbitmq.client.model import MessageQueue
from orbitmq.client.modes.model import RequestMode, TopicMode
from orbitmq.core.errors import ProtocolError
from orbitmq.protocol import fastjson
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "Assignment",
    "ModePush",
    "mode_table_fields",
    "parse_assignment",
    "parse_mode_push",
    "parse_mode_table",
]


def _mode(raw: object) -> RequestMode:
    try:
        return RequestMode(raw)
    except ValueError:
        raise ProtocolError(f"unknown message request mode {raw!r}") from None


def _int(raw: object, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ProtocolError(f"{what} is not an integer: {raw!r}")
    try:
        return int(raw)
    except ValueError:
        raise ProtocolError(f"{what} is not an integer: {raw!r}") from None


def parse_mode_table(resp: RemotingCommand, group: str) -> tuple[dict[str, TopicMode], TopicMode]:
    """A GET_ALL_MESSAGE_REQUEST_MODE answer → (this group's stored modes by topic, the broker's default);
    ProtocolError when it is malformed.

    An upstream broker sends no default: its shipped default is PULL, which is what we assume.
    """
    body = fastjson.loads(resp.body_bytes())
    # Every broker sends the map, empty or not; an answer without it is not "no modes", it is broken.
    table = body.get("messageRequestModeMap") if isinstance(body, dict) else None
    if not isinstance(table, dict):
        raise ProtocolError("mode table answer without a messageRequestModeMap object")
    modes: dict[str, TopicMode] = {}
    for topic, groups in table.items():
        entry = groups.get(group) if isinstance(groups, dict) else None
        if isinstance(entry, dict):
            share = _int(entry.get("popShareQueueNum", 0), "popShareQueueNum")
            modes[str(topic)] = TopicMode(_mode(entry.get("mode", "PULL")), share)
    default_mode = _mode(resp.ext_fields.get("defaultMessageRequestMode", "PULL"))
    default_share = _int(resp.ext_fields.get("defaultPopShareQueueNum", "-1"), "defaultPopShareQueueNum")
    return modes, TopicMode(default_mode, default_share if default_mode is RequestMode.POP else 0)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A QUERY_ASSIGNMENT answer: the queues and the mode they are to be consumed in (None: no queue, so
    the answer says nothing about the mode)."""

    queues: frozenset[MessageQueue]
    mode: RequestMode | None


def parse_assignment(resp: RemotingCommand) -> Assignment | None:
    """None for upstream's "no valid result" (``messageQueueAssignments`` null): keep what you have."""
    body = fastjson.loads(resp.body_bytes()) if resp.body_bytes() else {}
    if not isinstance(body, dict):
        raise ProtocolError("assignment body is not an object")
    raw = body.get("messageQueueAssignments")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ProtocolError("messageQueueAssignments is not a list")
    queues: set[MessageQueue] = set()
    modes: set[RequestMode] = set()
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("messageQueue"), dict):
            raise ProtocolError(f"bad assignment entry {entry!r}")
        try:
            queues.add(MessageQueue.from_json(entry["messageQueue"]))
        except (KeyError, ValueError) as exc:
            raise ProtocolError(f"bad message queue in assignment: {exc!r}") from exc
        modes.add(_mode(entry.get("mode", "PULL")))
    if len(modes) > 1:
        raise ProtocolError(f"assignment mixes modes {sorted(m.value for m in modes)}")
    return Assignment(frozenset(queues), modes.pop() if modes else None)


@dataclass(frozen=True, slots=True)
class ModePush:
    group: str
    topic: str
    mode: TopicMode
    reason: str


def parse_mode_push(cmd: RemotingCommand) -> ModePush:
    """The ext fields of a 403 push; ProtocolError when one is missing or wrong."""
    share = _int(cmd.ext_fields.get("popShareQueueNum", "0"), "popShareQueueNum")
    return ModePush(
        cmd.str_field("consumerGroup"),
        cmd.str_field("topic"),
        TopicMode(_mode(cmd.str_field("mode")), share),
        cmd.ext_fields.get("reason", "MODE_CHANGED"),
    )


def mode_table_fields(group: str, subscribe: bool) -> dict[str, Any]:
    """Ext fields of OrbitMQ's GET_ALL_MESSAGE_REQUEST_MODE: one group, and the 403 subscription."""
    return {"consumerGroup": group, "subscribeModeChange": subscribe}
