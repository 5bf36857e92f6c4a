"""Per-client state, keyed by the ``x-mq-client-id`` header: the settings the client was given, its open
Telemetry streams (to push commands such as an orphaned-transaction check) and when it was last heard of.

A client that sends nothing for ``grpcClientIdleTimeMills`` is forgotten; NotifyClientTermination forgets
it at once. The registry is plain state; the service decides what to do with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TELEMETRY_OUTBOX_MAX", "ClientRegistry", "ClientSession"]

#: Commands waiting to be written on one Telemetry stream; beyond it the stream is too slow and closed.
TELEMETRY_OUTBOX_MAX = 1024


@dataclass(eq=False)
class ClientSession:
    client_id: str
    client_type: int = 0
    #: The settings the proxy answered with (None until the first settings command).
    settings: Any = None
    group: str | None = None
    publish_topics: tuple[str, ...] = ()
    language: str = ""
    version: str = ""
    #: ``host:port`` of the client as the gRPC server saw it last.
    address: str = ""
    last_seen: float = 0.0
    #: One queue per open Telemetry stream of this client; the stream's writer drains it.
    outboxes: list[asyncio.Queue[Any]] = field(default_factory=list)

    def push(self, command: Any) -> bool:
        """Queue ``command`` on the first open stream that has room; False if none has."""
        for box in self.outboxes:
            if box.qsize() < TELEMETRY_OUTBOX_MAX:
                box.put_nowait(command)
                return True
        return False


class ClientRegistry:
    def __init__(self) -> None:
        self._sessions: dict[str, ClientSession] = {}

    def session(self, client_id: str, now: float) -> ClientSession:
        """The client's session, created on first contact; marks it seen."""
        s = self._sessions.get(client_id)
        if s is None:
            s = self._sessions[client_id] = ClientSession(client_id)
        s.last_seen = now
        return s

    def get(self, client_id: str) -> ClientSession | None:
        return self._sessions.get(client_id)

    def remove(self, client_id: str) -> ClientSession | None:
        return self._sessions.pop(client_id, None)

    def producers_of(self, topic: str) -> Iterator[ClientSession]:
        """Sessions with an open stream whose publishing settings list ``topic``."""
        for s in self._sessions.values():
            if s.outboxes and topic in s.publish_topics:
                yield s

    def idle(self, now: float, idle_s: float) -> list[ClientSession]:
        """Sessions without an open stream that were last seen more than ``idle_s`` ago."""
        return [s for s in self._sessions.values() if not s.outboxes and now - s.last_seen > idle_s]

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[ClientSession]:
        return iter(list(self._sessions.values()))
