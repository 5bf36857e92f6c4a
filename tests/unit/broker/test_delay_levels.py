"""Delay level table and the send-back retry rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.broker.delay_levels import (
    DEFAULT_MESSAGE_DELAY_LEVEL,
    clamp_level,
    delay_ms_for_level,
    effective_max_reconsume_times,
    is_dead_letter,
    level_for_queue_id,
    parse_delay_levels,
    queue_id_for_level,
    retry_delay_level,
)
from orbitmq.core.errors import ConfigError


def test_default_table_has_rocketmq_levels() -> None:
    levels = parse_delay_levels(DEFAULT_MESSAGE_DELAY_LEVEL)
    assert len(levels) == 18
    assert levels[:4] == (1000, 5000, 10_000, 30_000)
    assert levels[4] == 60_000
    assert levels[-1] == 2 * 3_600_000


def test_day_unit_and_extra_whitespace() -> None:
    assert parse_delay_levels(" 1d  2h\t3m 4s ") == (86_400_000, 7_200_000, 180_000, 4000)


@pytest.mark.parametrize("spec", ["", "   ", "1x", "s", "1.5s", "-1s", "1 s", "abc", "1s 2"])
def test_bad_tables_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="messageDelayLevel"):
        parse_delay_levels(spec)


def test_levels_above_the_table_are_clamped() -> None:
    levels = parse_delay_levels(DEFAULT_MESSAGE_DELAY_LEVEL)
    assert clamp_level(25, 18) == 18
    assert delay_ms_for_level(levels, 25) == 2 * 3_600_000
    assert delay_ms_for_level(levels, 3) == 10_000
    with pytest.raises(ValueError):
        delay_ms_for_level(levels, 0)


@given(st.integers(min_value=1, max_value=1000))
def test_queue_id_and_level_are_inverse(level: int) -> None:
    assert queue_id_for_level(level) == level - 1
    assert level_for_queue_id(queue_id_for_level(level)) == level


@given(st.integers(min_value=0, max_value=100))
def test_level_zero_means_three_plus_reconsume_times(reconsume: int) -> None:
    assert retry_delay_level(0, reconsume) == 3 + reconsume
    assert retry_delay_level(5, reconsume) == 5


def test_dead_letter_rule() -> None:
    assert not is_dead_letter(0, 16, 0)
    assert not is_dead_letter(15, 16, 0)
    assert is_dead_letter(16, 16, 0)
    assert is_dead_letter(0, 16, -1)


def test_header_max_reconsume_times_needs_a_recent_client() -> None:
    assert effective_max_reconsume_times(16, 3, 121) == 3
    assert effective_max_reconsume_times(16, 3, 120) == 16
    assert effective_max_reconsume_times(16, None, 500) == 16
