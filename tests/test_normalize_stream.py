"""Streaming normalization statistics: one pass, Chan et al. merges, equal to the all-in-memory
statistics; stable where the sum of squares cancels."""

from __future__ import annotations

import numpy as np
import pytest

from meshops.data.normalize import RunningStats, Stats


def test_streaming_equals_in_memory_statistics():
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0, 2.0, (int(n), 4)) * [1, 10, 0.1, 1] for n in rng.integers(1, 500, 40)]
    parts.insert(3, np.zeros((0, 4)))  # an empty case changes nothing
    s = Stats.fit(iter(parts), 4)  # a generator: one pass, nothing kept
    allrows = np.concatenate(parts)
    np.testing.assert_allclose(s.mean, allrows.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.std, allrows.std(0), rtol=1e-10)
    np.testing.assert_array_equal(s.lo, allrows.min(0))
    np.testing.assert_array_equal(s.hi, allrows.max(0))


def test_merging_accumulators_is_order_free():
    rng = np.random.default_rng(1)
    parts = [rng.normal(-5, 0.5, (n, 2)) for n in (7, 300, 1, 55)]
    a, b, whole = RunningStats(2), RunningStats(2), RunningStats(2)
    for p in parts[:2]:
        a.update(p)
    for p in parts[2:]:
        b.update(p)
    for p in parts[::-1]:
        whole.update(p)
    merged = a.merge(b)
    assert merged.count == whole.count == 363
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13)
    np.testing.assert_allclose(merged.m2, whole.m2, rtol=1e-10)


def test_stable_where_the_sum_of_squares_cancels():
    rng = np.random.default_rng(2)
    parts = [1e8 + rng.normal(0, 1e-2, (1000, 1)) for _ in range(20)]  # pressure in Pa with tiny fluctuations
    allrows = np.concatenate(parts)
    ref = allrows.std()
    acc = RunningStats(1)
    for p in parts:
        acc.update(p)
    assert np.sqrt(acc.m2[0] / acc.count) == pytest.approx(ref, rel=1e-6)
    naive = np.sqrt(max((allrows**2).mean() - allrows.mean() ** 2, 0.0))  # the old sum-of-squares formula
    assert abs(naive - ref) / ref > 1e-2  # what the merge avoids


def test_non_finite_values_name_the_channel():
    bad = np.ones((5, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"input 'U'\[1\] has 1 non-finite"):
        Stats.fit([np.ones((4, 2)), bad], 2, groups=[2], names=["U"], what="input")
