"""Consumer offsets: show, reset (INVOKE_BROKER_TO_RESET_OFFSET 222 on every broker of the topic), export
to a JSON document, import it into a cluster (creating entries for groups and topics never online there),
and move positions between clusters by time (see :mod:`orbitmq.admin.offsync` for the document and the
mapping rules).

Every write goes through the broker's server-side reset, so it is persisted at once, survives a restart,
and consumers that are online pick it up with their next pull (or pop).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orbitmq.admin.base import BrokerRef, json_object, mq_table
from orbitmq.admin.groups import GroupAdmin, QueueLag
from orbitmq.admin.offsync import OffsetChange, OffsetEntry, is_internal, topic_mapping_time
from orbitmq.admin.topics import TopicAdmin
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.protocol.codes import RequestCode, ResponseCode

__all__ = ["OffsetAdmin", "ResetResult"]


@dataclass(frozen=True, slots=True)
class ResetResult:
    broker_name: str
    queue_id: int
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {"brokerName": self.broker_name, "queueId": self.queue_id, "offset": self.offset}


def _code_name(code: int) -> str:
    try:
        return ResponseCode(code).name
    except ValueError:
        return f"CODE_{code}"


class OffsetAdmin(GroupAdmin, TopicAdmin):
    async def show_offsets(self, group: str, topic: str | None = None) -> list[QueueLag]:
        """Committed offset, max offset and lag of every queue the group consumes (of ``topic``)."""
        return await self.consume_stats(group, topic)

    async def committed_offset(self, addr: str, group: str, topic: str, queue_id: int) -> int | None:
        """The broker's committed offset, None when the group never committed on the queue."""
        fields = {"consumerGroup": group, "topic": topic, "queueId": queue_id, "setZeroIfNotFound": False}
        try:
            response = await self._invoke(addr, RequestCode.QUERY_CONSUMER_OFFSET, fields)
        except BrokerError as exc:
            if exc.code == ResponseCode.QUERY_NOT_FOUND:
                return None
            raise
        return int(response.ext_fields["offset"])

    # -- reset ---------------------------------------------------------------------------------------------
    async def _reset_on(
        self, broker: BrokerRef, group: str, topic: str, queue: int, offset: int | None, timestamp: int
    ) -> list[ResetResult]:
        fields = {"group": group, "topic": topic, "queueId": queue, "offset": offset, "timestamp": timestamp,
                  "isForce": True}  # fmt: skip
        body = json_object(
            await self._invoke(broker.addr, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, fields), "reset"
        )
        return [ResetResult(name, qid, int(value)) for (_t, name, qid), value in mq_table(body.get("offsetTable") or {}, "reset")]  # fmt: skip

    async def reset_offset(
        self,
        group: str,
        topic: str,
        *,
        timestamp: int | None = None,
        offset: int | None = None,
        queue: int | None = None,
        broker: str | None = None,
    ) -> list[ResetResult]:
        """Reset ``group`` on ``topic`` to the first message stored at/after ``timestamp`` (ms; negative =
        the end) or to ``offset``; on every queue, or queue ``queue``, of every broker (or ``broker``)."""
        if (timestamp is None) == (offset is None):
            raise ClientError("give exactly one of timestamp and offset")
        if offset is not None and offset < 0:
            raise ClientError(f"offset must be ≥ 0, got {offset}")
        targets = [
            b for b, queues in await self.topic_masters(topic)
            if (broker is None or b.name == broker) and (queue is None or queue < queues)
        ]  # fmt: skip
        if not targets:
            where = f"broker {broker!r}" if broker else "any broker"
            what = f"queue {queue} of " if queue is not None else ""
            raise ClientError(f"{what}topic {topic!r} is not served by {where}")
        out: list[ResetResult] = []
        for b in targets:
            out += await self._reset_on(
                b,
                group,
                topic,
                -1 if queue is None else queue,
                offset,
                -1 if timestamp is None else timestamp,
            )
        return out

    # -- export ----------------------------------------------------------------------------------------------
    async def export_offsets(
        self, groups: Collection[str] | None = None, *, include_internal: bool = False
    ) -> list[OffsetEntry]:
        """Every committed offset of ``groups`` (all groups when None) on every master, with the queue's
        bounds and the store time of the last consumed message."""
        out: list[OffsetEntry] = []
        for broker in await self.masters():
            body = json_object(
                await self._invoke(broker.addr, RequestCode.GET_ALL_CONSUMER_OFFSET), "offsets"
            )
            pairs: dict[tuple[str, str], dict[int, int]] = {}
            for key, queues in (body.get("offsetTable") or {}).items():
                topic, sep, group = str(key).partition("@")
                if not sep or "@" in group or (groups is not None and group not in groups):
                    continue
                if include_internal or not is_internal(group, topic):
                    pairs[(group, topic)] = {int(q): int(o) for q, o in (queues or {}).items()}
            out += await self._export_broker(broker, pairs)
        return sorted(out)

    async def _export_broker(
        self, broker: BrokerRef, pairs: dict[tuple[str, str], dict[int, int]]
    ) -> list[OffsetEntry]:
        bounds: dict[str, dict[int, tuple[int, int]] | None] = {}
        out = []
        for (group, topic), queues in sorted(pairs.items()):
            if topic not in bounds:
                bounds[topic] = await self._broker_bounds(broker, topic)
            topic_bounds = bounds[topic]
            if topic_bounds is None:
                continue  # the topic is gone from this broker: no position to carry over
            stats = await self._invoke(broker.addr, RequestCode.GET_CONSUME_STATS,
                                       {"consumerGroup": group, "topic": topic})  # fmt: skip
            table = mq_table(json_object(stats, "consume stats").get("offsetTable") or {}, "consume stats")
            last = {qid: int(s.get("lastTimestamp", 0)) for (_t, _b, qid), s in table}
            for qid, offset in sorted(queues.items()):
                low, high = topic_bounds.get(qid, (0, 0))
                out.append(OffsetEntry(group, topic, broker.name, qid, offset, low, high, last.get(qid, 0)))
        return out

    async def _broker_bounds(self, broker: BrokerRef, topic: str) -> dict[int, tuple[int, int]] | None:
        try:
            response = await self._invoke(broker.addr, RequestCode.GET_TOPIC_STATS_INFO, {"topic": topic})
        except BrokerError as exc:
            if exc.code == ResponseCode.TOPIC_NOT_EXIST:
                return None
            raise
        table = mq_table(json_object(response, "topic stats").get("offsetTable") or {}, "topic stats")
        return {qid: (int(s.get("minOffset", 0)), int(s.get("maxOffset", 0))) for (_t, _b, qid), s in table}

    # -- import ----------------------------------------------------------------------------------------------
    async def import_offsets(
        self, entries: Iterable[OffsetEntry], *, by_timestamp: bool = False, dry_run: bool = False
    ) -> list[OffsetChange]:
        """Apply exported positions to this cluster: the same offsets (clamped to each queue's range), or
        (``by_timestamp``) the same times. ``dry_run`` reports without changing anything."""
        by_pair: dict[tuple[str, str], list[OffsetEntry]] = defaultdict(list)
        for e in entries:
            by_pair[(e.group, e.topic)].append(e)
        out: list[OffsetChange] = []
        for (group, topic), pair in sorted(by_pair.items()):
            try:
                layout = {b.name: (b, queues) for b, queues in await self.topic_masters(topic)}
            except BrokerError as exc:
                if exc.code != ResponseCode.TOPIC_NOT_EXIST:
                    raise
                out += [_skip(e, f"topic {topic} does not exist on the target") for e in pair]
                continue
            if by_timestamp:
                out += await self._import_by_time(group, topic, pair, layout, dry_run)
            else:
                out += await self._import_offsets(group, topic, pair, layout, dry_run)
        return out

    async def _import_offsets(
        self, group: str, topic: str, pair: Sequence[OffsetEntry],
        layout: dict[str, tuple[BrokerRef, int]], dry_run: bool,
    ) -> list[OffsetChange]:  # fmt: skip
        out = []
        bounds: dict[str, dict[int, tuple[int, int]] | None] = {}
        for e in sorted(pair):
            if e.broker_name not in layout:
                out.append(_skip(e, f"no broker {e.broker_name} serves {topic} on the target"))
                continue
            broker, _ = layout[e.broker_name]
            if broker.name not in bounds:
                bounds[broker.name] = await self._broker_bounds(broker, topic)
            queue_bounds = (bounds[broker.name] or {}).get(e.queue_id)
            if queue_bounds is None:
                out.append(_skip(e, f"queue {e.queue_id} of {topic} does not exist on {broker.name}"))
                continue
            low, high = queue_bounds
            new = min(max(e.offset, low), high)
            how = "offset" if new == e.offset else f"clamped to [{low}-{high}]"
            out.append(await self._apply(broker, group, topic, e.queue_id, how, dry_run, offset=new))
        return out

    async def _import_by_time(
        self, group: str, topic: str, pair: Sequence[OffsetEntry],
        layout: dict[str, tuple[BrokerRef, int]], dry_run: bool,
    ) -> list[OffsetChange]:  # fmt: skip
        source = {(e.broker_name, e.queue_id): e for e in pair}
        target = {(name, q) for name, (_b, n) in layout.items() for q in range(n)}
        out = []
        if set(source) == target:
            for (name, q), e in sorted(source.items()):
                out.append(await self._apply(layout[name][0], group, topic, q, f"time {e.last_timestamp}",
                                             dry_run, timestamp=e.last_timestamp))  # fmt: skip
            return out
        when = topic_mapping_time(pair)
        for name, q in sorted(target):
            out.append(await self._apply(layout[name][0], group, topic, q, f"topic time {when}", dry_run,
                                         timestamp=when))  # fmt: skip
        return out

    async def _apply(
        self, broker: BrokerRef, group: str, topic: str, queue: int, how: str, dry_run: bool, *,
        offset: int | None = None, timestamp: int = -1,
    ) -> OffsetChange:  # fmt: skip
        old = await self.committed_offset(broker.addr, group, topic, queue)
        try:
            if dry_run:
                new = offset if offset is not None else await self._offset_at(broker, topic, queue, timestamp)
            else:
                results = await self._reset_on(broker, group, topic, queue, offset, timestamp)
                new = next(r.offset for r in results if r.queue_id == queue)
        except BrokerError as exc:
            why = f"{_code_name(exc.code)}: {exc.remark}"
            return OffsetChange(group, topic, broker.name, queue, old, None, why)
        return OffsetChange(group, topic, broker.name, queue, old, new, how)

    async def _offset_at(self, broker: BrokerRef, topic: str, queue: int, timestamp: int) -> int:
        """Where a reset by ``timestamp`` would land (SEARCH_OFFSET_BY_TIMESTAMP within [min, max])."""
        q = {"topic": topic, "queueId": queue}
        found = await self._invoke(
            broker.addr, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, {**q, "timestamp": timestamp}
        )
        low = await self._invoke(broker.addr, RequestCode.GET_MIN_OFFSET, q)
        high = await self._invoke(broker.addr, RequestCode.GET_MAX_OFFSET, q)
        return min(
            max(int(found.ext_fields["offset"]), int(low.ext_fields["offset"])),
            int(high.ext_fields["offset"]),
        )


def _skip(e: OffsetEntry, why: str) -> OffsetChange:
    return OffsetChange(e.group, e.topic, e.broker_name, e.queue_id, None, None, why)
