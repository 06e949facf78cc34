"""The recent-latency window behind the scoring latency gauges, against numpy's percentiles."""

from __future__ import annotations

import numpy as np
import pytest

from udfs.latency import RecentLatencies


def test_quantiles_match_numpy_nearest_rank_over_the_last_samples():
    rng = np.random.default_rng(3)
    xs = rng.integers(1, 10_000, size=5000)
    w = RecentLatencies(capacity=1024)
    for x in xs:
        w.record(int(x))
    recent = xs[-1024:]
    assert len(w) == 1024 and w.total == 5000
    for q in (0.5, 0.95, 0.99, 1.0):
        assert w.quantile(q) == int(np.percentile(recent, q * 100, method="inverted_cdf"))


def test_empty_window_and_bad_arguments():
    assert RecentLatencies().quantile(0.99) == 0
    with pytest.raises(ValueError):
        RecentLatencies(0)
    with pytest.raises(ValueError):
        RecentLatencies().quantile(1.5)


def test_quantiles_follow_each_new_sample():
    w = RecentLatencies(capacity=3)
    # sample, then the window's min and max (9 leaves the window last)
    for x, lo, hi in ((5, 5, 5), (9, 5, 9), (1, 1, 9), (2, 1, 9), (3, 1, 3)):
        w.record(x)
        assert (w.quantile(0.0), w.quantile(1.0)) == (lo, hi)
