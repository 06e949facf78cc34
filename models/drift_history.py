"""The clean history the drift verdict is calibrated on (``udfs.drift_calibration``), kept by
training and fitted at export.

The rows are training rows, never the held-out rows the drift reference is drawn from: those
that end a feature window (the longest, ``max_window_ms``) before the held-out rows start, so
no entity state is shared with the reference, and whose own features have warmed up (the
calibration skips its first feature window). Their scores are out of fold
(``cross_val_predict``, 5 folds), as the model scores rows it never saw.

The history must give ``MIN_WINDOWS`` clean windows of the monitor's length (windows start
every half length, so about 500 window lengths, e.g. 125 days of 6h windows); with less,
training keeps no rows and says why, and the monitor's verdict stays ``drift_share``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.dataset import LABEL_COLUMN
from models.store.metadata import ModelInput
from rtml.core.config import JobConfig
from udfs.drift import DriftColumns
from udfs.drift_calibration import (
    MIN_WINDOWS,
    STRIDES,
    CalibrationInputs,
    DriftCalibration,
    calibrate,
    clean_window_count,
)

CALIBRATION_FILE = "calibration.parquet"
FOLDS = 5
TIME_COLUMN = "__event_time__"
ID_COLUMN = "__event_id__"


def calibration_rows(
    cfg: JobConfig,
    train_rows: pd.DataFrame,
    holdout_from_ms: int | None,
    make_pipe: Callable[[], Any],
    model_frame: Callable[[pd.DataFrame], pd.DataFrame],
    inputs: tuple[ModelInput, ...],
    score_column: str,
    fit_params: dict[str, Any],
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The calibration rows (model inputs, out-of-fold score, event time and id) and a
    summary for training.json; (None, the reason) when the history is too short."""
    window, warm = cfg.monitoring.window_ms, cfg.features.max_window_ms
    summary: dict[str, Any] = {"window_ms": window, "min_windows": MIN_WINDOWS}
    if not cfg.monitoring.enabled or holdout_from_ms is None or ID_COLUMN not in train_rows:
        return None, summary | {"skipped": "no monitoring, no held-out rows or no event ids"}
    t = train_rows[TIME_COLUMN].to_numpy(dtype=np.int64)
    keep = t < holdout_from_ms - warm
    span = int(t[keep].max() - t[keep].min()) - warm if keep.any() else 0
    windows = clean_window_count(max(span, 0), window)
    summary |= {"rows": int(keep.sum()), "clean_windows": windows}
    if windows < MIN_WINDOWS:
        days = (MIN_WINDOWS // STRIDES + 1) * window / 86_400_000 + 2 * warm / 86_400_000
        return None, summary | {
            "skipped": f"{windows} clean windows in the training history, {MIN_WINDOWS} needed "
            f"(about {days:.0f} days of training rows before the held-out ones)"
        }
    rows = train_rows[keep]
    y = rows[LABEL_COLUMN].to_numpy()
    if len(np.unique(y)) < 2 or np.bincount(y.astype(int)).min() < FOLDS:
        return None, summary | {"skipped": f"fewer than {FOLDS} rows of one class"}
    from sklearn.model_selection import cross_val_predict

    params = {k: np.asarray(v)[keep] for k, v in fit_params.items()}
    scores = cross_val_predict(
        make_pipe(), model_frame(rows), y, cv=FOLDS, method="predict_proba", params=params
    )[:, 1]
    out = rows[[i.name for i in inputs] + [TIME_COLUMN, ID_COLUMN]].copy()
    out[score_column] = scores
    return out, summary


def fit_calibration(
    cfg: JobConfig,
    artifacts: Path,
    reference: pd.DataFrame,
    inputs: tuple[ModelInput, ...],
    score_column: str,
) -> DriftCalibration | None:
    """The drift test calibrated on the training's calibration rows at the config's
    false-alarm rate; None without rows, or when not even the smallest band has enough
    windows."""
    path = artifacts / CALIBRATION_FILE
    if not path.exists():
        return None
    columns = DriftColumns.of(inputs, score_column)
    m = cfg.monitoring
    cal = calibrate(
        pd.read_parquet(path),
        reference,
        columns.numerical,
        columns.categorical,
        CalibrationInputs(
            m.drift_false_alarm_rate,
            m.window_ms,
            m.drift_min_rows,
            m.drift_sample_cap,
            cfg.features.max_window_ms,
        ),
        TIME_COLUMN,
        ID_COLUMN,
    )
    return cal if cal.bands else None
