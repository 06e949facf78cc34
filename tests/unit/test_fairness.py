"""Fairness figures cross-checked against fairlearn (an independent implementation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_ratio,
    equal_opportunity_ratio,
    equalized_odds_ratio,
)

from udfs.fairness import FairnessWindow, wilson


def window_from(y_pred_fav, y_true_fav, groups, labelled_mask=None):
    w = FairnessWindow()
    for i, (p, y, g) in enumerate(zip(y_pred_fav, y_true_fav, groups, strict=True)):
        w.add_prediction(g, bool(p))
        if labelled_mask is None or labelled_mask[i]:
            w.add_outcome(g, bool(p), bool(y))
    return w


@pytest.mark.parametrize("seed", range(8))
def test_ratios_equal_fairlearn(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    groups = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    y = (rng.random(n) < 0.8).astype(int)
    rate = {"a": 0.9, "b": 0.75, "c": 0.85, "d": 0.6}
    p = np.array(
        [int(rng.random() < (rate[g] if yy else 0.3)) for g, yy in zip(groups, y, strict=True)]
    )
    r = window_from(p, y, groups).report(min_count=1)
    assert r["disparate_impact_ratio"] == pytest.approx(
        demographic_parity_ratio(y, p, sensitive_features=groups), abs=1e-12
    )
    assert r["equal_opportunity_ratio"] == pytest.approx(
        equal_opportunity_ratio(y, p, sensitive_features=groups), abs=1e-12
    )
    assert r["equalized_odds_ratio"] == pytest.approx(
        equalized_odds_ratio(y, p, sensitive_features=groups), abs=1e-12
    )
    for g in "abcd":
        m = groups == g
        assert r["groups"][g]["selection_rate"] == pytest.approx(p[m].mean())
        assert r["groups"][g]["tpr"] == pytest.approx(p[m & (y == 1)].mean())


def test_label_coverage_and_partial_labels():
    p = [1, 1, 0, 1]
    y = [1, 0, 0, 1]
    w = window_from(p, y, ["a", "a", "b", "b"], labelled_mask=[True, False, True, False])
    r = w.report(min_count=1)
    assert r["predictions"] == 4 and r["labelled"] == 2 and r["label_coverage"] == 0.5


def test_small_groups_are_reported_but_left_out_of_ratios():
    w = window_from([1] * 50 + [0] * 3, [1] * 53, ["big"] * 50 + ["tiny"] * 3)
    r = w.report(min_count=30)
    assert r["groups"]["tiny"]["n"] == 3
    assert r["disparate_impact_ratio"] is None  # only one eligible group


def test_four_fifths_alert():
    p = [1] * 90 + [0] * 10 + [1] * 60 + [0] * 40
    w = window_from(p, [1] * 200, ["a"] * 100 + ["b"] * 100)
    r = w.report(min_count=30)
    assert r["disparate_impact_ratio"] == pytest.approx(0.6 / 0.9)
    assert "disparate_impact" in r["alerts"]


def test_all_zero_rates_give_no_ratio():
    r = window_from([0] * 80, [1] * 80, ["a"] * 40 + ["b"] * 40).report(min_count=30)
    assert r["disparate_impact_ratio"] is None


def test_snapshot_round_trip():
    w = window_from([1, 0, 1], [1, 1, 0], ["a", "b", "a"])
    assert FairnessWindow.restore(w.snapshot()).report(1) == w.report(1)


def test_wilson_interval_covers_the_rate():
    lo, hi = wilson(30, 100)
    assert lo < 0.3 < hi and 0.2 < lo and hi < 0.4
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_ratio_interval_has_its_nominal_coverage():
    """Simulated windows with a known true ratio: the 95% interval covers it ~95% of the time."""
    from udfs.fairness import ratio_ci

    rng = np.random.default_rng(0)
    true_ratio = 0.7 / 0.9
    hits = 0
    trials = 2000
    for _ in range(trials):
        k1 = rng.binomial(300, 0.7)
        k2 = rng.binomial(400, 0.9)
        lo, hi = ratio_ci(k1, 300, k2, 400)
        hits += lo <= true_ratio <= hi
    assert 0.93 <= hits / trials <= 0.97


def test_alert_needs_confidence_watch_does_not():
    confident = window_from(
        [1] * 900 + [0] * 100 + [1] * 600 + [0] * 400, [1] * 2000, ["a"] * 1000 + ["b"] * 1000
    ).report(30)
    assert "disparate_impact" in confident["alerts"] and confident["disparate_impact_ci95"][1] < 0.8
    unsure = window_from(
        [1] * 36 + [0] * 4 + [1] * 28 + [0] * 12, [1] * 80, ["a"] * 40 + ["b"] * 40
    ).report(30)
    assert (
        unsure["disparate_impact_ratio"] < 0.8
        and unsure["alerts"] == []
        and "disparate_impact" in unsure["watch"]
    )


@pytest.mark.parametrize("bias", [0.1, 0.3])
def test_injected_label_bias_is_measured_within_its_interval(bias):
    """Ground truth from the generator: a share `bias` of the protected group's legitimate
    events are labelled fraud, and fraud is independent of the group, so the favourable-label
    rate ratio (protected / others) is 1 - bias."""
    from rtml.cli.scenarios.cards import PROTECTED_GROUP, ScenarioOptions, generate

    sc = generate(ScenarioOptions(seed=21, events=40_000, days=6, bias=bias))
    group = {
        e["event_id"]: ("protected" if e["age_band"] == PROTECTED_GROUP else "others")
        for e in sc.events
    }
    w = FairnessWindow()
    for lab in sc.labels:
        g = group[lab["event_id"]]
        w.add_prediction(g, True)
        w.add_outcome(g, True, lab["is_fraud"] == 0)
    r = w.report(min_count=30)
    lo, hi = r["label_base_rate_ci95"]
    assert lo <= 1 - bias <= hi, (r["label_base_rate_ratio"], lo, hi)
