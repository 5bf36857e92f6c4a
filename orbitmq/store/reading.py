"""How a read through a consume queue turns into a GetResult: one function, shared by every store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from orbitmq.protocol.record import record_properties, verify_record_crc
from orbitmq.store.api import GetResult, GetStatus, RecordFilter, StoreConfig, TagFilter

__all__ = ["collect_messages", "offset_outside_queue", "read_queue"]

log = logging.getLogger("orbitmq.store")

#: (logical offset, physical offset, size, tag code) of one consume-queue unit.
Unit = tuple[int, int, int, int]


def offset_outside_queue(offset: int, min_offset: int, max_offset: int) -> GetResult | None:
    """The result for an offset that has nothing to read, or None when ``offset`` is inside the queue."""

    def result(status: GetStatus, next_offset: int) -> GetResult:
        return GetResult(status, next_offset, min_offset, max_offset)

    if max_offset == 0:
        return result(GetStatus.NO_MESSAGE_IN_QUEUE, 0)
    if offset < min_offset:
        return result(GetStatus.OFFSET_TOO_SMALL, min_offset)
    if offset == max_offset:
        return result(GetStatus.OFFSET_OVERFLOW_ONE, offset)
    if offset > max_offset:
        return result(GetStatus.OFFSET_OVERFLOW_BADLY, max_offset)
    return None


def collect_messages(
    units: Iterable[Unit],
    read: Callable[[int, int], memoryview | None],
    *,
    offset: int,
    min_offset: int,
    max_offset: int,
    log_min: int,
    max_count: int,
    max_bytes: int,
    tag_filter: TagFilter | None,
    record_filter: RecordFilter | None,
) -> GetResult:
    """Walk consume-queue units from ``offset`` and gather matching records, within count and byte limits.

    A record whose CRC does not match is never served: it is skipped with an error log (the reads check what
    recovery checked). Units below the CommitLog minimum (deleted by retention) are skipped.
    """
    res = GetResult(GetStatus.NO_MATCHED_MESSAGE, offset, min_offset, max_offset)
    total = 0
    for qo, phy, size, tag in units:
        if phy < log_min or (tag_filter is not None and not tag_filter(tag)):
            res.next_begin_offset = qo + 1
            continue
        view = read(phy, size)
        if view is None:
            break  # not readable yet: stop here, the next read starts at this unit
        if not verify_record_crc(view):
            log.error(
                "corrupt record at CommitLog offset %d (queue offset %d) is skipped, not served", phy, qo
            )
            res.next_begin_offset = qo + 1
            continue
        if record_filter is not None and not record_filter(record_properties(view)):
            res.next_begin_offset = qo + 1
            continue
        if res.buffers and total + size > max_bytes:
            break
        res.buffers.append(view)
        res.queue_offsets.append(qo)
        total += size
        res.next_begin_offset = qo + 1
        if len(res.buffers) >= max_count:
            break
    if res.buffers:
        res.status = GetStatus.FOUND
    return res


def read_queue(
    config: StoreConfig,
    bounds: tuple[int, int] | None,
    units: Callable[[int, int], Iterable[Unit]],
    read: Callable[[int, int], memoryview | None],
    *,
    offset: int,
    log_min: int,
    max_count: int,
    max_bytes: int | None,
    tag_filter: TagFilter | None,
    record_filter: RecordFilter | None,
) -> GetResult:
    """A store's ``get_messages``: ``bounds`` is the queue's (min, max) offsets, None for an unknown queue;
    ``units(start, limit)`` yields its consume-queue units; ``read(phy, size)`` returns a record's bytes."""
    if bounds is None:
        return GetResult(GetStatus.NO_MATCHED_LOGIC_QUEUE, 0, 0, 0)
    min_offset, max_offset = bounds
    outside = offset_outside_queue(offset, min_offset, max_offset)
    if outside is not None:
        return outside
    filtering = tag_filter is not None or record_filter is not None
    window = max(max_count, config.max_filter_message_count) if filtering else max_count
    return collect_messages(
        units(offset, window),
        read,
        offset=offset,
        min_offset=min_offset,
        max_offset=max_offset,
        log_min=log_min,
        max_count=max_count,
        max_bytes=max_bytes or config.max_transfer_bytes_on_message_in_memory,
        tag_filter=tag_filter,
        record_filter=record_filter,
    )
