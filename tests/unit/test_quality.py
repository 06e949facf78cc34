"""Model quality per window (udfs/quality.py), cross-checked with scikit-learn, and its
bottom-k sample: exact below the cap, uniform above it, merged in any order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from udfs.quality import QualityWindow, figures, roc_auc_delong


def _rows(n: int, seed: int, groups=("a", "b", "c"), ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    if ties:
        s = np.round(s, 1)
    g = rng.choice(groups, n)
    return s, y, g


def _window(s, y, g, cap=100_000) -> QualityWindow:
    w = QualityWindow(cap)
    for i, (si, yi, gi) in enumerate(zip(s, y, g, strict=True)):
        w.add(f"e{i}", si, si >= 0.5, yi, gi)
    return w


def _ece(s, y, bins=10):
    """Expected calibration error, written independently: bin edges by np.histogram."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.digitize(s, edges[1:-1])
    return sum(
        (which == b).mean() * abs(y[which == b].mean() - s[which == b].mean())
        for b in range(bins)
        if (which == b).any()
    )


@pytest.mark.parametrize("ties", [False, True])
def test_figures_equal_sklearn_overall_and_per_group(ties):
    s, y, g = _rows(3000, seed=1, ties=ties)
    report = _window(s, y, g).report(min_count=30)
    for sel, got in [(np.ones(len(s), bool), report)] + [
        (g == name, report["groups"][name]) for name in ("a", "b", "c")
    ]:
        ss, yy = s[sel], y[sel]
        assert got["rows"] == sel.sum() and got["positives"] == yy.sum()
        assert got["precision"] == pytest.approx(precision_score(yy, ss >= 0.5), abs=1e-12)
        assert got["recall"] == pytest.approx(recall_score(yy, ss >= 0.5), abs=1e-12)
        assert got["roc_auc"] == pytest.approx(roc_auc_score(yy, ss), abs=1e-12)
        assert got["average_precision"] == pytest.approx(average_precision_score(yy, ss), abs=1e-12)
        assert got["brier"] == pytest.approx(brier_score_loss(yy, ss), abs=1e-12)
        assert got["ece"] == pytest.approx(_ece(ss, yy), abs=1e-12)
    assert not report["sampled"] and report["labelled_seen"] == 3000


def test_delong_interval_agrees_with_a_bootstrap():
    s, y, _ = _rows(2000, seed=2)
    auc, (lo, hi) = roc_auc_delong(s, y)
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(400):
        i = rng.integers(0, len(s), len(s))
        boot.append(roc_auc_score(y[i], s[i]))
    se_boot = float(np.std(boot, ddof=1))
    se_delong = (hi - lo) / (2 * 1.959963984540054)
    assert lo < auc < hi
    assert se_delong == pytest.approx(se_boot, rel=0.15)


def test_one_label_gives_no_auc_and_small_groups_are_marked():
    s = np.array([0.2, 0.7, 0.9])
    y = np.array([True, True, True])
    f = figures(s, s >= 0.5, y)
    assert f["roc_auc"] is None and f["roc_auc_ci95"] is None and f["average_precision"] is None
    assert f["recall"] == pytest.approx(2 / 3)
    r = _window(s, y, ["a", "a", "b"]).report(min_count=2)
    assert r["groups"]["b"]["below_min_count"] and not r["groups"]["a"]["below_min_count"]
    empty = QualityWindow(10).report(30)
    assert empty["rows"] == 0 and empty["precision"] is None and empty["brier"] is None


def test_alert_only_when_the_whole_interval_is_below_the_floor():
    s, y, g = _rows(3000, seed=3)
    auc = _window(s, y, g).report(30)["roc_auc"]
    assert not _window(s, y, g).report(30, held_out_auc=auc, margin=0.05)["alert"]
    high = _window(s, y, g).report(30, held_out_auc=auc + 0.2, margin=0.05)
    assert high["alert"] and high["next_step"] == "rtml train --from-log"
    assert high["roc_auc_floor"] == pytest.approx(auc + 0.15)
    # the point estimate under the floor, the interval reaching above it: no alert
    lo, hi = high["roc_auc_ci95"]
    near = _window(s, y, g).report(30, held_out_auc=auc + (hi - auc) / 2 + 0.05, margin=0.05)
    assert near["roc_auc"] < near["roc_auc_floor"] and not near["alert"]


def test_above_the_cap_the_sample_is_uniform_over_the_window():
    s, y, g = _rows(20_000, seed=4)
    order = np.argsort(s)  # the window's rows arrive sorted by score: a head sample is biased
    w = QualityWindow(2000)
    for i in order:
        w.add(f"e{i}", s[i], s[i] >= 0.5, y[i], g[i])
    r = w.report(30)
    assert r["rows"] == 2000 and r["labelled_seen"] == 20_000 and r["sampled"]
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=0.03)
    assert np.mean([row[1] for row in w.sample()]) == pytest.approx(s.mean(), abs=0.02)


labelled = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.floats(0, 1, allow_nan=False),
        st.booleans(),
        st.booleans(),
        st.sampled_from(["a", "b"]),
    ),
    max_size=60,
    unique_by=lambda r: r[0],
)


@settings(max_examples=200, deadline=None)
@given(labelled, st.integers(1, 30), st.randoms(use_true_random=False))
def test_merging_parts_equals_one_window(rows, cap, rnd):
    """Split the rows into parts at random, count each part, merge in a random order and
    grouping: the same sample, the same figures, as one window over all rows."""
    whole = QualityWindow(cap)
    parts = [QualityWindow(cap) for _ in range(4)]
    for row in rows:
        whole.add(*row)
        rnd.choice(parts).add(*row)
    rnd.shuffle(parts)
    left = parts[0].merge(parts[1])
    right = parts[2].merge(parts[3])
    merged = QualityWindow.restore(left.snapshot()).merge(right)
    assert merged.sample() == whole.sample()
    assert merged.seen == whole.seen == len(rows)
    a, b = merged.report(5), whole.report(5)
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float):
            assert math.isclose(a[k], b[k]) or (math.isnan(a[k]) and math.isnan(b[k]))
        else:
            assert a[k] == b[k]
