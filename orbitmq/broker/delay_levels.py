"""Delay levels and the send-back retry rule (RocketMQ ``messageDelayLevel``, ``ScheduleMessageService``).

A delayed message is stored in ``SCHEDULE_TOPIC_XXXX`` queue ``level - 1`` and re-stored in its real topic
when due. A consumer's send-back (CONSUMER_SEND_MSG_BACK) either schedules a retry at a delay level or
moves the message to the group's dead-letter topic. Everything here is a pure function over numbers.
"""

from __future__ import annotations

from typing import Final

from orbitmq.core.errors import ConfigError

__all__ = [
    "DEFAULT_MESSAGE_DELAY_LEVEL",
    "RETRY_BASE_DELAY_LEVEL",
    "clamp_level",
    "delay_ms_for_level",
    "effective_max_reconsume_times",
    "is_dead_letter",
    "level_for_queue_id",
    "parse_delay_levels",
    "queue_id_for_level",
    "retry_delay_level",
]

#: RocketMQ's default ``messageDelayLevel``: levels 1..18.
DEFAULT_MESSAGE_DELAY_LEVEL: Final = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

#: A send-back with delay level 0 lets the broker choose ``RETRY_BASE_DELAY_LEVEL + reconsumeTimes``
#: (level 3 = 10 s with the default table, then 30 s, 1 m, ...).
RETRY_BASE_DELAY_LEVEL: Final = 3

_UNIT_MS: Final = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_delay_levels(spec: str) -> tuple[int, ...]:
    """The delay of each level in milliseconds: ``result[level - 1]``.

    Tokens are ``<count><unit>`` with unit s, m, h or d, separated by whitespace. Upstream refuses to start
    the broker on a bad table; we raise :class:`ConfigError` naming the token.
    """
    tokens = spec.split()
    if not tokens:
        raise ConfigError("messageDelayLevel: empty delay level table")
    out: list[int] = []
    for token in tokens:
        unit_ms = _UNIT_MS.get(token[-1])
        count = token[:-1]
        if unit_ms is None or not (count.isascii() and count.isdigit()):
            raise ConfigError(
                f"messageDelayLevel: bad delay level {token!r} (expected a count followed by s, m, h or d)"
            )
        out.append(int(count) * unit_ms)
    return tuple(out)


def clamp_level(level: int, max_level: int) -> int:
    """A level above the table's last level means the last level (upstream clamps, it does not reject)."""
    return min(level, max_level)


def delay_ms_for_level(levels: tuple[int, ...], level: int) -> int:
    """Delay of ``level`` (≥ 1) after clamping; a level ≤ 0 means "no delay" and is the caller's case."""
    if level <= 0:
        raise ValueError(f"delay level {level} is not a delay")
    return levels[clamp_level(level, len(levels)) - 1]


def queue_id_for_level(level: int) -> int:
    """The ``SCHEDULE_TOPIC_XXXX`` queue holding messages of ``level``."""
    return level - 1


def level_for_queue_id(queue_id: int) -> int:
    return queue_id + 1


def effective_max_reconsume_times(
    group_retry_max_times: int, header_max: int | None, request_version: int
) -> int:
    """The bound a send-back is checked against.

    The group's ``retryMaxTimes`` unless the client (version ≥ V3_4_9, ordinal 121) sent its own
    ``maxReconsumeTimes`` header.
    """
    if header_max is not None and request_version >= 121:
        return header_max
    return group_retry_max_times


def is_dead_letter(reconsume_times: int, max_reconsume_times: int, delay_level: int) -> bool:
    """True when a send-back goes to ``%DLQ%<group>``: retries exhausted, or the client asked (level < 0)."""
    return reconsume_times >= max_reconsume_times or delay_level < 0


def retry_delay_level(delay_level: int, reconsume_times: int) -> int:
    """Delay level of a retry: the client's level, or ``3 + reconsumeTimes`` when it sent 0.

    The result may exceed the table; the scheduler clamps it (:func:`clamp_level`).
    """
    return RETRY_BASE_DELAY_LEVEL + reconsume_times if delay_level == 0 else delay_level
