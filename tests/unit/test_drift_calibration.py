"""The calibrated drift statistic (udfs/drift_calibration.py): its distances equal scipy's,
and on clean windows whose rows share a window-level effect (as rolling features do) the
fitted threshold gives the stated false-alarm rate, where textbook p-values do not."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from models.drift_history import CALIBRATION_FILE, calibration_rows, fit_calibration
from models.store.metadata import ModelInput, ModelMetadata
from rtml.core.config import load_config
from udfs.drift import DriftColumns
from udfs.drift_calibration import (
    CalibrationInputs,
    ColumnDistances,
    DriftCalibration,
    band_rows,
    calibrate,
    chi_square,
    clean_window_count,
    clean_windows,
    hash_order,
    ks_statistic,
)
from udfs.drift_sample import bottom_k
from udfs.drift_verdict import CALIBRATED, UNCALIBRATED, CalibratedDrift, with_verdict
from udfs.sampling import stable_key

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
LEVELS = ["a", "b", "c", "d"]
SHARES = [0.4, 0.3, 0.2, 0.1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=2, max_size=60),
    st.lists(st.integers(-5, 5), min_size=2, max_size=60),
)
def test_ks_statistic_equals_scipy_with_ties(a, b):
    got = ks_statistic(np.array(a, float), np.sort(np.array(b, float)))
    assert got == pytest.approx(stats.ks_2samp(a, b, method="asymp").statistic, abs=1e-12)


def test_chi_square_equals_scipy_chisquare():
    ref = {"a": 40, "b": 30, "c": 0}
    values = ["a"] * 12 + ["b"] * 5 + ["c"] * 2 + ["z"] * 1
    levels = ["a", "b", "c", "z"]
    p = np.array([40.5, 30.5, 0.5, 0.5])
    observed = [12, 5, 2, 1]
    expected = p / p.sum() * len(values)
    assert chi_square(values, ref) == pytest.approx(stats.chisquare(observed, expected).statistic)
    assert sorted(set(values)) == levels


def test_hash_order_is_the_drift_samples_bottom_k_order():
    ids = [f"ev-{i}" for i in range(300)]
    rows = [(stable_key(e), e, {}) for e in ids]
    order = hash_order(np.array(ids, dtype=object))
    assert [ids[i] for i in order][:50] == [r[1] for r in bottom_k(rows, 50)]


def test_bands_are_geometric_up_to_the_cap():
    assert band_rows(50, 2000) == [50, 71, 100, 141, 200, 283, 400, 566, 800, 1131, 1600, 2000]
    assert band_rows(100, 100) == [100]


def _history(windows: int, rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Time-ordered rows, ``rows`` per hour on average: ``x`` independent per row, ``level``
    a category, ``slow`` shares a per-hour offset (all rows of an hour move together, as a
    busy merchant's rolling count does), so rows are not independent within a window."""
    rng = np.random.default_rng(seed)
    n = windows * rows
    t = np.sort(rng.integers(0, windows * HOUR, n))
    hour = t // HOUR
    offset = rng.normal(0, 0.3, windows)[hour]
    return pd.DataFrame(
        {
            "__event_time__": t,
            "__event_id__": [f"s{seed}-{i}" for i in range(n)],
            "x": rng.normal(shift, 1, n),
            "slow": offset + rng.normal(0, 1, n),
            "level": rng.choice(LEVELS, n, p=SHARES),
        }
    )


@pytest.fixture(scope="module")
def calibrated() -> tuple[DriftCalibration, ColumnDistances]:
    hist = _history(1200, 80, seed=1)
    ref = _history(400, 80, seed=2).sample(2000, random_state=0)
    inputs = CalibrationInputs(0.05, HOUR, 40, 2000, warmup_ms=0)
    cal = calibrate(hist, ref, ["x", "slow"], ["level"], inputs)
    return cal, ColumnDistances(ref, ["x", "slow"], ["level"])


def _windows(frame):
    return clean_windows(frame, ["x", "slow"], ["level"], HOUR, 0)[::2]  # one offset: disjoint


def _verdicts(cal, dist, frame):
    windows = _windows(frame)
    return [v for v in (cal.test(dist, w) for w in windows) if v is not None]


def test_clean_windows_alarm_at_the_stated_rate_where_textbook_p_values_do_not(calibrated):
    cal, dist = calibrated
    assert [b.rows for b in cal.bands] == [40, 57, 80]  # 80 rows an hour: no band above
    fresh = _history(1000, 80, seed=3)
    verdicts = _verdicts(cal, dist, fresh)
    alarms = sum(v.drift for v in verdicts)
    lo, hi = stats.binom.ppf([0.005, 0.995], len(verdicts), 0.05)
    assert len(verdicts) >= 950 and lo <= alarms <= hi, (alarms, len(verdicts))
    # the same windows' KS p-values on the shared-offset column, as if rows were independent
    ref = dist.sorted["slow"]
    textbook = [stats.ks_2samp(w["slow"][:57], ref).pvalue < 0.05 for w in _windows(fresh)[:300]]
    assert np.mean(textbook) > 0.3


def test_a_shift_is_detected_and_named(calibrated):
    cal, dist = calibrated
    verdicts = _verdicts(cal, dist, _history(100, 80, seed=4, shift=0.8))
    assert np.mean([v.drift for v in verdicts]) > 0.9
    named = [v.drifted_columns for v in verdicts if v.drift]
    assert all("x" in c for c in named) and np.mean([c == ("x",) for c in named]) > 0.8
    assert all(0 <= v.p_value < cal.false_alarm_rate for v in verdicts if v.drift)


def test_calibration_round_trips_and_windows_below_the_smallest_band_get_none(calibrated):
    cal, dist = calibrated
    back = DriftCalibration.from_dict(cal.to_dict())
    assert back == cal
    window = _windows(_history(3, 80, seed=5))[0]
    assert back.test(dist, {c: v[:39] for c, v in window.items()}) is None
    assert back.test(dist, {c: v[:45] for c, v in window.items()}).rows == 40


# the calibration as the product carries it: kept by training, fitted at export, stored in the
# model metadata (JSON) and applied by the drift monitor to a window's sample rows


def _sample_rows(frame: pd.DataFrame) -> list[dict]:
    """A window's rows as the drift monitor holds them: dicts in bottom-k order."""
    keyed = [
        (stable_key(r["__event_id__"]), r["__event_id__"], r) for r in frame.to_dict("records")
    ]
    return [r for _, _, r in bottom_k(keyed, len(keyed))]


def test_the_monitor_applies_the_stored_calibration_as_the_test_itself(calibrated):
    cal, dist = calibrated
    stored = json.loads(json.dumps(cal.to_dict()))  # as ModelMetadata.to_json writes it
    assert ModelMetadata.__dataclass_fields__["drift_calibration"].default is None
    ref = pd.DataFrame({"x": [0.0], "slow": [0.0], "level": ["a"]})
    columns = DriftColumns(("x", "slow"), ("level",))
    assert CalibratedDrift.of(None, ref, columns) is None
    assert CalibratedDrift.of(stored, ref, DriftColumns(("x",), ("level",))) is None  # others
    reference = _history(400, 80, seed=2).sample(2000, random_state=0)
    test = CalibratedDrift.of(stored, reference, columns)
    hist = _history(3, 80, seed=6, shift=0.8)
    t0 = hist["__event_time__"].min()  # clean_windows' first window starts at the first row
    t = hist["__event_time__"]
    window = hist[(t >= t0 + HOUR) & (t < t0 + 2 * HOUR)]
    got = test.verdict(_sample_rows(window))
    want = cal.test(dist, clean_windows(hist, ["x", "slow"], ["level"], HOUR, 0)[1])
    assert got["verdict"] == CALIBRATED and got["dataset_drift"] is want.drift is True
    assert (got["statistic"], got["threshold"], got["p_value"], got["rows_compared"]) == (
        want.statistic,
        want.threshold,
        want.p_value,
        want.rows,
    )
    assert got["calibrated_drifted_columns"] == list(want.drifted_columns)
    assert got["false_alarm_rate"] == 0.05 and set(got["column_z"]) == {"x", "slow", "level"}
    assert test.verdict(_sample_rows(window.iloc[:30])) is None  # below the smallest band
    summary = {"drift_share": 0.2, "drifted_columns": ["x"], "dataset_drift": False, "rows": 30}
    assert with_verdict(summary, test, _sample_rows(window)) == summary | got
    fallback = with_verdict(summary, test, _sample_rows(window.iloc[:30]))
    assert fallback["verdict"] == UNCALIBRATED and fallback["dataset_drift"] is False
    assert "smallest calibrated band (40)" in fallback["uncalibrated_reason"]
    assert "uncalibrated_reason" not in with_verdict(summary, None, _sample_rows(window))


def test_training_keeps_a_long_history_and_export_calibrates_on_it(tmp_path):
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    base = load_config(ROOT / "deploy/configs/cards.toml")
    cfg = replace(
        base,
        monitoring=replace(
            base.monitoring, window_ms=HOUR, drift_min_rows=40, drift_false_alarm_rate=0.05
        ),
    )
    inputs = (ModelInput("x", "float"), ModelInput("slow", "float"), ModelInput("level", "string"))
    hist = _history(1300, 40, seed=7)
    hist["__label__"] = hist["x"] + np.random.default_rng(0).normal(0, 1, len(hist)) > 1.5
    hist["__label__"] = hist["__label__"].astype(int)

    def make_pipe():
        enc = make_column_transformer((OneHotEncoder(), ["level"]), remainder="passthrough")
        return make_pipeline(enc, LogisticRegression())

    def frame(rows):
        return rows[["x", "slow", "level"]]

    cut = int(hist["__event_time__"].iloc[int(len(hist) * 0.8)])
    train, held = hist[hist["__event_time__"] < cut], hist[hist["__event_time__"] >= cut]
    short, why = calibration_rows(
        cfg, train.iloc[:2000], cut, make_pipe, frame, inputs, "score", {}
    )
    assert short is None and "1000 needed" in why["skipped"]
    rows, summary = calibration_rows(cfg, train, cut, make_pipe, frame, inputs, "score", {})
    warm = cfg.features.max_window_ms
    assert rows["__event_time__"].max() < cut - warm and len(rows) == summary["rows"]
    assert summary["clean_windows"] >= 1000 and rows["score"].between(0, 1).all()
    # out of fold: not the scores of a model fitted on the same rows
    fitted = make_pipe().fit(frame(rows), train.loc[rows.index, "__label__"])
    assert not np.allclose(rows["score"], fitted.predict_proba(frame(rows))[:, 1])
    rows.to_parquet(tmp_path / CALIBRATION_FILE, index=False)
    reference = held.sample(1500, random_state=0).copy()
    reference["score"] = fitted.predict_proba(frame(reference))[:, 1]
    cal = fit_calibration(cfg, tmp_path, reference, inputs, "score")
    assert cal.false_alarm_rate == 0.05 and [b.rows for b in cal.bands] == [40]
    assert set(cal.numerical) == {"x", "slow", "score"} and cal.categorical == ("level",)
    assert fit_calibration(cfg, tmp_path / "none", reference, inputs, "score") is None
    assert clean_window_count(10 * HOUR, HOUR) == 18 and clean_window_count(HOUR, HOUR) == 0
