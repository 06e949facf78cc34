"""A drift window's verdict. Where the model version was exported with a calibrated drift test
(``udfs.drift_calibration``, stored in its metadata), the window drifts when the test's
statistic passes the threshold calibrated for its rows, at the stated false-alarm rate; the
event carries the statistic, the threshold, the implied p-value and each column's z.
Otherwise the verdict is Evidently's share of drifted columns against ``[monitoring]
drift_share``, marked ``uncalibrated``. Evidently's per-column scores and share are reported
either way. Pure (pandas, numpy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from udfs.drift import DriftColumns
from udfs.drift_calibration import ColumnDistances, DriftCalibration, window_columns

CALIBRATED = "calibrated"
UNCALIBRATED = "uncalibrated"


class CalibratedDrift:
    """The calibrated test of one model version, with its reference prepared once."""

    def __init__(self, calibration: DriftCalibration, reference: pd.DataFrame) -> None:
        self.calibration = calibration
        self.distances = ColumnDistances(reference, calibration.numerical, calibration.categorical)

    @classmethod
    def of(
        cls, stored: Mapping[str, Any] | None, reference: pd.DataFrame, columns: DriftColumns
    ) -> CalibratedDrift | None:
        """From a version's metadata (``drift_calibration``); None when it has none, or one
        for other columns than the monitor compares (then the verdict is uncalibrated)."""
        if not stored:
            return None
        cal = DriftCalibration.from_dict(stored)
        if set(cal.numerical) != set(columns.numerical) or set(cal.categorical) != set(
            columns.categorical
        ):
            return None
        return cls(cal, reference)

    def verdict(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """The test on a window's sample rows, in the monitor's bottom-k order; None when the
        window has fewer rows than the smallest calibrated band."""
        cal = self.calibration
        names = [*cal.numerical, *cal.categorical]
        frame = pd.DataFrame.from_records(list(rows), columns=names)
        t = cal.test(self.distances, window_columns(frame, cal.numerical, cal.categorical))
        if t is None:
            return None
        return {
            "verdict": CALIBRATED,
            "dataset_drift": t.drift,
            "statistic": t.statistic,
            "threshold": t.threshold,
            "p_value": t.p_value,
            "false_alarm_rate": cal.false_alarm_rate,
            "rows_compared": t.rows,
            "calibrated_drifted_columns": list(t.drifted_columns),
            "column_z": {c: round(z, 4) for c, z in sorted(t.z.items())},
        }


def with_verdict(
    summary: dict[str, Any],
    test: CalibratedDrift | None,
    rows: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Evidently's summary (``drift_share``, ``drifted_columns``, ``dataset_drift`` by
    drift_share) with the window's verdict: the version's calibrated test on the window's
    sample ``rows`` when it has one that fits them, else Evidently's, marked uncalibrated
    (and why, when the version has a calibration)."""
    out = dict(summary)
    calibrated = None if test is None else test.verdict(rows)
    if calibrated is not None:
        out.update(calibrated)
        return out
    out["verdict"] = UNCALIBRATED
    if test is not None:
        smallest = test.calibration.bands[0].rows
        out["uncalibrated_reason"] = (
            f"{len(rows)} rows, fewer than the smallest calibrated band ({smallest})"
        )
    return out
