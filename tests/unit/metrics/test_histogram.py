"""The stdlib observation types components keep (orbitmq.core.metrics)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.core.metrics import LATENCY_BUCKETS_S, NULL_RECORDER, Histogram, Recorder


def test_a_value_goes_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    h = Histogram([1, 2, 5])
    for v in (0.5, 1, 1.5, 2, 5, 7):
        h.observe(v)
    snap = h.snapshot()
    assert snap.counts == (2, 2, 1, 1)  # (≤1) (≤2) (≤5) (>5)
    assert list(snap.cumulative()) == [(1, 2), (2, 4), (5, 5), (math.inf, 6)]
    assert snap.count == 6 and snap.sum == pytest.approx(17.0)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False)))
def test_cumulative_counts_agree_with_counting_directly(values: list[float]) -> None:
    h = Histogram(LATENCY_BUCKETS_S)
    for v in values:
        h.observe(v)
    for bound, n in h.snapshot().cumulative():
        assert n == sum(1 for v in values if v <= bound)


@pytest.mark.parametrize("bounds", [[], [2, 1], [1, 1], [1, math.inf]])
def test_bad_bounds_are_refused(bounds: list[float]) -> None:
    with pytest.raises(ValueError):
        Histogram(bounds)


def test_the_null_recorder_and_the_histogram_are_recorders() -> None:
    recorders: list[Recorder] = [NULL_RECORDER, Histogram([1])]
    for r in recorders:
        r.observe(0.5)
    assert recorders[1].snapshot().count == 1  # type: ignore[attr-defined]


def test_snapshot_is_a_copy() -> None:
    h = Histogram([1])
    snap = h.snapshot()
    h.observe(0)
    assert snap.count == 0 and h.snapshot().count == 1
