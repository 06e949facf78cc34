"""Drift ground truth with the generator: drift injected at T is flagged after T and not
before; the false-alarm rate over clean windows is measured; Evidently's per-column score
is cross-checked against scipy.

The live stream gets the job's features from the offline replay (equal to the job's, as the
Flink and integration tiers show) and is scored with the trained model; the monitor is the
job's own ``DriftMonitor`` with the demo config's threshold.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from models.dataset import build_dataset
from models.train import frame_for_model, model_inputs, train
from rtml.cli.scenarios.cards import DAY_MS, HOUR_MS, ScenarioOptions, generate
from udfs.drift import DriftColumns, DriftMonitor

WINDOW = 6 * HOUR_MS
DAYS = 8
DRIFT_AT_H = 6 * 24  # the last two days drift


def _labelled_features(cfg, opts: ScenarioOptions) -> pd.DataFrame:
    """A fresh generator run's labelled rows with the job's features (the offline replay)."""
    stream = generate(opts)
    return build_dataset(cfg, stream.events, stream.labels)


def _evaluated(reference: pd.DataFrame, columns: DriftColumns, share: float, windows) -> list:
    """The job's ``DriftMonitor`` over ``(window start, rows)`` pairs: their drift summaries."""
    monitor = DriftMonitor(reference, columns, share)
    return [monitor.evaluate(rows, ws, ws + WINDOW, "1") for ws, rows in windows]


@pytest.fixture(scope="module")
def windows(cfg, tmp_path_factory):
    import joblib

    per_day = 20_000 / 3  # the demo's event rate, which training must share
    history = ScenarioOptions(seed=1, events=int(per_day * 4), days=4, bias=0.25)
    opts = ScenarioOptions(
        seed=7,
        events=int(per_day * DAYS),
        days=DAYS,
        bias=0.25,
        drift_at_ms=ScenarioOptions().start_ms + DRIFT_AT_H * HOUR_MS,
        drift_size=0.8,
    )
    # two at a time on the machine's cores (Evidently takes seconds per window); spawned, not
    # forked: the test process may hold a JVM gateway and client threads
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        hist_rows, live_rows = (
            pool.submit(_labelled_features, cfg, history),
            pool.submit(_labelled_features, cfg, opts),
        )
        res = train(cfg, hist_rows.result(), tmp_path_factory.mktemp("m"), progress=lambda m: None)
        pipe = joblib.load(res.artifacts / "model.joblib")
        reference = pd.read_parquet(res.artifacts / "reference.parquet")
        live = live_rows.result()
        inputs = model_inputs(cfg)
        live["score"] = pipe.predict_proba(frame_for_model(live, inputs))[:, 1]
        start = opts.start_ms
        starts = list(range(start + DAY_MS, start + DAYS * DAY_MS, WINDOW))  # day one: warm-up
        t = live["__event_time__"]
        frames = {ws: live[(t >= ws) & (t < ws + WINDOW)] for ws in starts}
        halves = [
            pool.submit(
                _evaluated,
                reference,
                DriftColumns.of(inputs),
                cfg.monitoring.drift_share,  # the demo config's threshold
                [(ws, frames[ws].to_dict("records")) for ws in starts[k::2]],
            )
            for k in (0, 1)
        ]
        summaries = dict(
            zip(starts[0::2] + starts[1::2], halves[0].result() + halves[1].result(), strict=True)
        )
    return [((ws - start) / HOUR_MS, summaries[ws], frames[ws], reference) for ws in starts]


def test_drift_flagged_after_t_and_false_alarm_rate_measured(windows):
    clean = [s for h, s, _, _ in windows if h + 6 <= DRIFT_AT_H]
    drifted = [s for h, s, _, _ in windows if h >= DRIFT_AT_H]
    false_alarms = sum(s["dataset_drift"] for s in clean)
    print(
        f"\nclean windows: {len(clean)}, false alarms: {false_alarms} ({false_alarms / len(clean):.1%}); "
        f"drift share clean max {max(s['drift_share'] for s in clean):.2f}, drifted min {min(s['drift_share'] for s in drifted):.2f}"
    )
    assert len(clean) == 20 and len(drifted) == 8
    assert all(s["dataset_drift"] for s in drifted)
    assert false_alarms == 0


def test_evidently_column_score_equals_scipy(windows):
    """Evidently's 'Wasserstein distance (normed)' is the distance over the reference's std."""
    _, summary, rows, reference = windows[-1]
    col = summary["columns"]["amount"]
    assert col["method"] == "Wasserstein distance (normed)"
    ref = reference["amount"].to_numpy(dtype=float)
    cur = rows["amount"].to_numpy(dtype=float)
    assert col["score"] == pytest.approx(wasserstein_distance(ref, cur) / np.std(ref), rel=1e-6)
