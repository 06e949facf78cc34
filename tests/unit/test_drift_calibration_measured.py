"""The calibrated drift verdict measured on fresh generator runs of both scenarios (#17, item 3):
calibrated on one clean history, then the false-alarm rate on at least 1,000 clean windows of
another run, and the detection rate at the demo's shift and at half of it.

Features come from the job's own feature code (``models.dataset.build_dataset``); the split,
the calibration rows (out-of-fold scores) and the fit are the product's own
(``models.drift_history``, as ``rtml train`` and ``rtml export`` call it). About 450,000 events
are generated and replayed through the feature code, the runs two at a time (116 s on 2 cores).

    .venv/bin/python -m pytest -s tests/unit/test_drift_calibration_measured.py
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.dataset import build_dataset
from models.drift_history import CALIBRATION_FILE, calibration_rows, fit_calibration
from models.train import frame_for_model, make_pipeline, model_inputs
from rtml.cli.commands.data import scenario_options
from rtml.cli.scenarios.cards import HOUR_MS, generate
from rtml.core.config import JobConfig, load_config
from tests.integration.trips.generator import trips
from udfs.drift import DriftColumns
from udfs.drift_calibration import ColumnDistances, clean_windows

ROOT = Path(__file__).resolve().parents[2]
RATE = 0.01
SCORE = "score"


@dataclass(frozen=True)
class Scenario:
    name: str
    config: Path
    window_ms: int
    rows_per_hour: float
    history_hours: float
    shift: str  # what the injected shift scales

    def frame(self, cfg: JobConfig, seed: int, hours: float, drift: float = 0.0) -> pd.DataFrame:
        n = int(self.rows_per_hour * hours)
        if self.name == "cards":
            sc = generate(
                scenario_options(
                    seed=seed,
                    events=n,
                    days=hours / 24,
                    drift_at_h=0.0 if drift else None,
                    drift_size=drift,
                    bias=0.0,
                    bad_fraction=0.0,
                )
            )
            return build_dataset(cfg, sc.events, sc.labels)
        events, labels, _ = trips(seed, n, hours=hours)
        if drift:
            moved = []
            for raw in events:
                e = json.loads(raw)
                e["fare"] = round(e["fare"] * (1 + drift), 2)
                moved.append(json.dumps(e))
            events = moved
        return build_dataset(cfg, events, labels)


SCENARIOS = [
    # the card demo's population at 70 events an hour, hour-long windows
    Scenario("cards", ROOT / "deploy/configs/cards.toml", HOUR_MS, 70, 61 * 24, "amounts, channel"),
    # the trips config's own 4h windows at 25 trips an hour
    Scenario("trips", ROOT / "tests/integration/trips/trips.toml", 4 * HOUR_MS, 25, 4000, "fares"),
]
DEMO_SHIFT = 0.8  # `rtml demo --drift-size` default: amounts x1.8


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.name)
def test_false_alarm_and_detection_rates_on_fresh_runs(sc: Scenario, tmp_path):
    base = load_config(sc.config)
    cfg = replace(
        base,
        monitoring=replace(
            base.monitoring,
            window_ms=sc.window_ms,
            drift_min_rows=50,
            drift_sample_cap=2000,
            drift_false_alarm_rate=RATE,
        ),
    )
    inputs = model_inputs(cfg)
    warmup = cfg.features.max_window_ms
    window_h = sc.window_ms / HOUR_MS
    detect_h = 200 * window_h + warmup / HOUR_MS
    runs = {  # name: (seed, hours, shift); each a fresh generator run
        "history": (101, sc.history_hours, 0.0),
        "clean": (202, 1030 * window_h + warmup / HOUR_MS + 2 * window_h, 0.0),
        "full": (303, detect_h, DEMO_SHIFT),
        "half": (304, detect_h, DEMO_SHIFT / 2),
    }
    # spawned, not forked: the test process may hold a JVM gateway and client threads
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {k: pool.submit(sc.frame, cfg, *run) for k, run in runs.items()}
        frames = {k: f.result() for k, f in futures.items()}
    hist = build_sorted(frames["history"])
    # as `rtml train` splits (the latest 20% held out) and keeps the calibration rows, and as
    # `rtml export` calibrates on them (models.drift_history)
    cut = int(hist["__event_time__"].iloc[int(len(hist) * 0.8)])
    train = hist[hist["__event_time__"] < cut]
    held = hist[hist["__event_time__"] >= cut].copy()
    pipe = make_pipeline(inputs, seed=0)
    pipe.fit(frame_for_model(train, inputs), train["__label__"].to_numpy())
    rows, _ = calibration_rows(
        cfg,
        train,
        cut,
        lambda: make_pipeline(inputs, seed=0),
        lambda r: frame_for_model(r, inputs),
        inputs,
        SCORE,
        {},
    )
    rows.to_parquet(tmp_path / CALIBRATION_FILE, index=False)
    reference = held.sample(n=2000, random_state=0)
    reference[SCORE] = pipe.predict_proba(frame_for_model(reference, inputs))[:, 1]
    columns = DriftColumns.of(inputs, SCORE)
    nums, cats = columns.numerical, columns.categorical
    cal = fit_calibration(cfg, tmp_path, reference, inputs, SCORE)
    distances = ColumnDistances(reference, nums, cats)

    def verdicts(run: str):
        f = frames[run]
        f[SCORE] = pipe.predict_proba(frame_for_model(f, inputs))[:, 1]
        ws = clean_windows(f, nums, cats, sc.window_ms, warmup)[::2]  # one offset: disjoint
        return [v for v in (cal.test(distances, w) for w in ws) if v is not None]

    clean = verdicts("clean")
    alarms = sum(v.drift for v in clean)
    lo, hi = stats.binom.ppf([0.025, 0.975], len(clean), RATE)
    full = verdicts("full")
    half = verdicts("half")
    detected = np.mean([v.drift for v in full])
    detected_half = np.mean([v.drift for v in half])
    print(
        f"\n{sc.name}: calibrated on {cal.history['windows']} windows "
        f"(bands {[(b.rows, b.windows, round(b.threshold, 3)) for b in cal.bands]}); "
        f"false alarms {alarms}/{len(clean)} = {alarms / len(clean):.2%} "
        f"(stated {RATE:.0%}, binomial 95% range {int(lo)}-{int(hi)}); "
        f"detected {detected:.1%} of {len(full)} at x{1 + DEMO_SHIFT:g} {sc.shift}, "
        f"{detected_half:.1%} of {len(half)} at x{1 + DEMO_SHIFT / 2:g}"
    )
    print("alarm columns", Counter(c for v in clean if v.drift for c in v.drifted_columns))
    assert len(clean) >= 1000
    assert alarms > 0 and lo <= alarms <= hi
    assert detected >= 0.9


def build_sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("__event_time__", kind="stable").reset_index(drop=True)
