"""Queue allocation strategies (RocketMQ's ``AllocateMessageQueueStrategy``), as pure functions.

Every strategy is ``(consumer_group, current_cid, all_queues, all_cids) -> list[MessageQueue]`` where
``all_queues`` and ``all_cids`` are sorted and identical on every member of the group, so each member
computes its own share and the shares partition the queues. All strategies except ``by_config`` give
nothing to a cid that is not in ``all_cids`` (it is not yet known to the broker).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Sequence
from typing import TypeAlias

from orbitmq.client.model import MessageQueue

__all__ = [
    "AllocateStrategy",
    "averagely",
    "averagely_by_circle",
    "broker_room",
    "by_config",
    "by_machine_room",
    "client_room",
    "consistent_hash",
    "machine_room_nearby",
    "md5_hash",
]

AllocateStrategy: TypeAlias = Callable[[str, str, Sequence[MessageQueue], Sequence[str]], list[MessageQueue]]


def averagely(
    group: str, cid: str, all_queues: Sequence[MessageQueue], all_cids: Sequence[str]
) -> list[MessageQueue]:
    """Consecutive blocks; the first ``n mod m`` consumers get one more (remoting-protocol.md §7.5)."""
    if cid not in all_cids or not all_queues:
        return []
    n, m, i = len(all_queues), len(all_cids), list(all_cids).index(cid)
    rem = n % m
    size = 1 if n <= m else n // m + (1 if i < rem else 0)
    start = i * size if rem > 0 and i < rem else i * size + rem
    count = min(size, n - start)
    return list(all_queues[start : start + count]) if count > 0 else []


def averagely_by_circle(
    group: str, cid: str, all_queues: Sequence[MessageQueue], all_cids: Sequence[str]
) -> list[MessageQueue]:
    """Round robin: consumer i takes queues i, i+m, i+2m, ..."""
    if cid not in all_cids:
        return []
    i = list(all_cids).index(cid)
    return list(all_queues[i :: len(all_cids)])


def md5_hash(key: str) -> int:
    """The ring hash of upstream's ``ConsistentHashRouter``: the first 4 bytes of MD5, unsigned big-endian.
    Deterministic across processes and platforms (unlike Python's ``hash``)."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:4], "big")


def consistent_hash(virtual_nodes: int = 10) -> AllocateStrategy:
    """Consistent hashing with ``virtual_nodes`` ring points per consumer (keys ``<cid>-<i>``); each queue,
    hashed as its Java ``toString()``, goes to the first ring point at or after its hash, wrapping around.
    Adding or removing a consumer moves only the queues next to its points."""
    if virtual_nodes < 1:
        raise ValueError("virtual_nodes must be >= 1")

    def allocate(
        group: str, cid: str, all_queues: Sequence[MessageQueue], all_cids: Sequence[str]
    ) -> list[MessageQueue]:
        if cid not in all_cids:
            return []
        ring: dict[int, str] = {}
        for member in all_cids:  # sorted input: a hash collision resolves the same way on every member
            for v in range(virtual_nodes):
                ring[md5_hash(f"{member}-{v}")] = member
        points = sorted(ring)
        out = []
        for mq in all_queues:
            idx = bisect.bisect_left(points, md5_hash(str(mq)))
            if ring[points[idx % len(points)]] == cid:
                out.append(mq)
        return out

    return allocate


def by_config(queues: Sequence[MessageQueue]) -> AllocateStrategy:
    """A fixed list, whatever the group looks like (upstream's ``AllocateMessageQueueByConfig``)."""
    fixed = list(queues)

    def allocate(
        group: str, cid: str, all_queues: Sequence[MessageQueue], all_cids: Sequence[str]
    ) -> list[MessageQueue]:
        return list(fixed)

    return allocate


def broker_room(mq: MessageQueue) -> str:
    """The machine room of a queue: brokers deployed per room are named ``<room>@<brokerName>``."""
    room, sep, _ = mq.broker_name.partition("@")
    return room if sep else ""


def client_room(cid: str) -> str:
    """The machine room of a consumer: its client id is ``ip@instance@<room>`` (the unit-name slot)."""
    parts = cid.split("@")
    return parts[2] if len(parts) >= 3 else ""


def by_machine_room(consumer_idcs: set[str] | frozenset[str]) -> AllocateStrategy:
    """Only queues of brokers in ``consumer_idcs`` (``<idc>@<name>``), split in blocks of ``n // m`` with the
    ``n mod m`` leftovers going one each to the first consumers (upstream's machine-room strategy)."""
    idcs = frozenset(consumer_idcs)

    def allocate(
        group: str, cid: str, all_queues: Sequence[MessageQueue], all_cids: Sequence[str]
    ) -> list[MessageQueue]:
        if cid not in all_cids:
            return []
        i, m = list(all_cids).index(cid), len(all_cids)
        pre = [mq for mq in all_queues if "@" in mq.broker_name and broker_room(mq) in idcs]
        per, rem = divmod(len(pre), m)
        out = pre[i * per : i * per + per]
        if i < rem:
            out.append(pre[per * m + i])
        return out

    return allocate


def machine_room_nearby(
    inner: AllocateStrategy,
    queue_room: Callable[[MessageQueue], str] = broker_room,
    consumer_room: Callable[[str], str] = client_room,
) -> AllocateStrategy:
    """Queues of a room go to that room's consumers (split with ``inner``); queues of a room without any
    consumer are shared by all consumers (split with ``inner`` too)."""

    def allocate(
        group: str, cid: str, all_queues: Sequence[MessageQueue], all_cids: Sequence[str]
    ) -> list[MessageQueue]:
        if cid not in all_cids:
            return []
        queues_by_room: dict[str, list[MessageQueue]] = {}
        for mq in all_queues:
            queues_by_room.setdefault(queue_room(mq), []).append(mq)
        cids_by_room: dict[str, list[str]] = {}
        for c in all_cids:
            cids_by_room.setdefault(consumer_room(c), []).append(c)
        mine = consumer_room(cid)
        out: list[MessageQueue] = []
        if mine in queues_by_room:
            out += inner(group, cid, queues_by_room[mine], cids_by_room[mine])
        for room in sorted(queues_by_room):
            if room not in cids_by_room:
                out += inner(group, cid, queues_by_room[room], all_cids)
        return out

    return allocate
