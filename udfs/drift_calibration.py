"""Calibrated drift verdicts: a window statistic, its distribution on clean windows, and the
threshold that gives a stated false-alarm rate per window. Pure (numpy, scipy, pandas).

Why calibrate on *contiguous* windows: a window's rows are not independent draws. Rolling
features of one entity (a busy merchant's 24h count) take nearly the same value on all its
rows in a window, so textbook p-values (KS, chi-square), which assume independent rows, call
most clean windows drifted. rtml instead measures how far clean windows of the monitor's own
length fall from the reference, on history the model did not see in the reference:

1. **Per column**, the distance of a window's sample to the reference sample: the two-sample
   Kolmogorov-Smirnov statistic for a numerical column, Pearson's chi-square of the window's
   level counts against the reference's (smoothed) level shares for a categorical one; taken
   as a log and standardised by its mean and spread over the clean windows, ``z``.
2. **Per window**, the statistic ``T = max z`` over the columns; the upper tail of its
   distribution over the clean windows is fitted with a generalised Pareto law (peaks over
   the 90th percentile, ``scipy.stats.genpareto``), and the threshold is the fitted
   ``1 - rate`` quantile. The implied p-value of a window is the fitted tail probability at
   its ``T``. Columns whose ``z`` is above the threshold are
   its drifted columns (so a window drifts exactly when it has one).
3. **Per row-count band**: the distribution depends on the rows compared, so it is fitted per
   band of rows (geometric, from ``drift_min_rows`` to ``drift_sample_cap``). A clean window
   and a live one are cut to a band's rows the same way, the first rows of the monitor's
   bottom-k order (``udfs.sampling.stable_key`` of the event id), which is itself a uniform
   sample of the window.

The rate holds for live windows exchangeable with the clean history: the same traffic
(rates, entity mix) as the rows calibrated on, with features warmed up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from udfs.sampling import stable_key

MIN_WINDOWS = 1000  # clean windows (at two offsets per window length) a band needs
BAND_RATIO = math.sqrt(2.0)  # bands of rows: min_rows, x1.41, x2, ... up to the sample cap
STRIDES = 2  # clean windows start every half window length: twice the windows per history
_FLOOR = 1e-6  # log of a zero distance


@dataclass(frozen=True)
class ColumnLaw:
    """The mean and spread of a column's log distance over clean windows of a band."""

    mean: float
    sd: float


@dataclass(frozen=True)
class Band:
    rows: int
    windows: int
    columns: dict[str, ColumnLaw]
    tail: tuple[float, float, float]  # T's upper tail: (u, shape, scale), see tail_law
    threshold: float

    def p_value(self, statistic: float) -> float:
        return tail_sf(statistic, self.tail)


@dataclass(frozen=True)
class DriftTest:
    """One window's calibrated verdict."""

    statistic: float
    threshold: float
    p_value: float
    drift: bool
    rows: int  # rows compared (the band's)
    drifted_columns: tuple[str, ...]
    z: dict[str, float]


class ColumnDistances:
    """The per-column log distance of a sample to a reference sample (prepared once)."""

    def __init__(
        self, reference: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str]
    ) -> None:
        self.numerical, self.categorical = tuple(numerical), tuple(categorical)
        cols = window_columns(reference, numerical, categorical)
        self.sorted = {c: np.sort(cols[c][~np.isnan(cols[c])]) for c in self.numerical}
        self.shares: dict[str, dict[str, int]] = {
            c: pd.Series(cols[c]).value_counts().to_dict() for c in self.categorical
        }

    def of(self, window: Mapping[str, np.ndarray], rows: int | None = None) -> dict[str, float]:
        """Log distances of a window (its columns in bottom-k order; the first ``rows``)."""
        out: dict[str, float] = {}
        for c in self.numerical:
            v = window[c][:rows]
            d = ks_statistic(v[~np.isnan(v)], self.sorted[c])
            if d is not None:
                out[c] = math.log(max(d, _FLOOR))
        for c in self.categorical:
            x2 = chi_square(window[c][:rows], self.shares[c])
            if x2 is not None:
                out[c] = math.log(max(x2, _FLOOR))
        return out


def window_columns(
    frame: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str]
) -> dict[str, np.ndarray]:
    """The compared columns as arrays: numerical as floats (NaN where missing), categorical
    as strings."""
    out = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float) for c in numerical}
    out.update({c: frame[c].astype(str).to_numpy(dtype=object) for c in categorical})
    return out


def ks_statistic(values: np.ndarray, reference_sorted: np.ndarray) -> float | None:
    """The two-sample Kolmogorov-Smirnov statistic (as ``scipy.stats.ks_2samp``'s)."""
    if len(values) < 2 or len(reference_sorted) < 2:
        return None
    x = np.sort(values)
    at = np.concatenate([x, reference_sorted])
    fx = np.searchsorted(x, at, side="right") / len(x)
    fr = np.searchsorted(reference_sorted, at, side="right") / len(reference_sorted)
    return float(np.abs(fx - fr).max())


def chi_square(
    values: Sequence[str] | np.ndarray, reference_counts: Mapping[str, int]
) -> float | None:
    """Pearson's chi-square of the sample's level counts against the reference's level shares
    (each level's reference count + 0.5, so a level the reference never saw counts)."""
    if len(values) == 0:
        return None
    uniq, n = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)
    counts = dict(zip(uniq.tolist(), n.tolist(), strict=True))
    levels = sorted(set(reference_counts) | set(counts))
    if len(levels) < 2:
        return None
    ref = np.array([reference_counts.get(lv, 0) + 0.5 for lv in levels])
    expected = ref / ref.sum() * len(values)
    observed = np.array([counts.get(lv, 0) for lv in levels])
    return float(((observed - expected) ** 2 / expected).sum())


def hash_order(event_ids: np.ndarray) -> np.ndarray:
    """Positions of ``event_ids`` (strings) in the monitor's bottom-k order (stable key, then
    id; ``udfs.drift_sample.bottom_k``)."""
    keys = np.array([stable_key(i) for i in event_ids], dtype=np.int64)
    return np.lexsort((event_ids, keys))


@dataclass(frozen=True)
class DriftCalibration:
    false_alarm_rate: float
    window_ms: int
    sample_cap: int
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    bands: tuple[Band, ...]
    history: dict[str, Any] = field(default_factory=dict)  # rows, windows, span calibrated on

    def band(self, rows: int) -> Band | None:
        """The band with the most rows a window of ``rows`` rows can fill."""
        fitting = [b for b in self.bands if b.rows <= rows]
        return fitting[-1] if fitting else None

    def test(
        self, distances: ColumnDistances, window: Mapping[str, np.ndarray]
    ) -> DriftTest | None:
        """The window's verdict (its columns in bottom-k order); None when no band fits."""
        band = self.band(window_length(window))
        if band is None:
            return None
        z = standardised(distances.of(window, band.rows), band.columns)
        t = max(z.values()) if z else -math.inf
        return DriftTest(
            statistic=t,
            threshold=band.threshold,
            p_value=band.p_value(t) if z else 1.0,
            drift=t > band.threshold,
            rows=band.rows,
            drifted_columns=tuple(sorted(c for c, v in z.items() if v > band.threshold)),
            z=z,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftCalibration:
        bands = tuple(
            Band(
                rows=int(b["rows"]),
                windows=int(b["windows"]),
                columns={c: ColumnLaw(**law) for c, law in b["columns"].items()},
                tail=tuple(b["tail"]),  # type: ignore[arg-type]
                threshold=float(b["threshold"]),
            )
            for b in d["bands"]
        )
        return cls(
            false_alarm_rate=float(d["false_alarm_rate"]),
            window_ms=int(d["window_ms"]),
            sample_cap=int(d["sample_cap"]),
            numerical=tuple(d["numerical"]),
            categorical=tuple(d["categorical"]),
            bands=bands,
            history=dict(d.get("history", {})),
        )


def standardised(
    log_distances: Mapping[str, float], laws: Mapping[str, ColumnLaw]
) -> dict[str, float]:
    return {c: (v - laws[c].mean) / laws[c].sd for c, v in log_distances.items() if c in laws}


@dataclass(frozen=True)
class CalibrationInputs:
    """What calibration needs from the job's config (``[monitoring]`` and the features)."""

    false_alarm_rate: float
    window_ms: int
    min_rows: int
    sample_cap: int
    warmup_ms: int  # the longest feature window: earlier rows have cold features


def window_length(window: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(window.values()))) if window else 0


def clean_window_count(span_ms: int, window_ms: int) -> int:
    """How many windows ``clean_windows`` gives over a warmed-up span: ``STRIDES`` offsets
    per window length, the last window of each cut short and dropped."""
    return STRIDES * max(0, span_ms // window_ms - 1)


def clean_windows(
    rows: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    window_ms: int,
    warmup_ms: int,
    time_col: str = "__event_time__",
    id_col: str = "__event_id__",
) -> list[dict[str, np.ndarray]]:
    """Windows of ``window_ms`` over the rows (at ``STRIDES`` offsets per length), after the
    warm-up and before the last (cut short), each's columns in bottom-k order."""
    if rows.empty:
        return []
    t = rows[time_col].to_numpy(dtype=np.int64)
    ids = rows[id_col].astype(str).to_numpy(dtype=object)
    cols = window_columns(rows, numerical, categorical)
    start = int(t.min()) + warmup_ms
    out = []
    for k in range(STRIDES):
        offset = start + k * window_ms // STRIDES
        last = (int(t.max()) - offset) // window_ms
        which = np.where(t >= offset, (t - offset) // window_ms, -1)
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(0, last + 1))
        for w in range(last):
            idx = order[bounds[w] : bounds[w + 1]]
            if len(idx) == 0:
                continue
            idx = idx[hash_order(ids[idx])]
            out.append({c: v[idx] for c, v in cols.items()})
    return out


def calibrate(
    rows: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    inputs: CalibrationInputs,
    time_col: str = "__event_time__",
    id_col: str = "__event_id__",
) -> DriftCalibration:
    """Fit the clean-window law per band on ``rows`` (history not in ``reference``)."""
    distances = ColumnDistances(reference, numerical, categorical)
    windows = clean_windows(
        rows, numerical, categorical, inputs.window_ms, inputs.warmup_ms, time_col, id_col
    )
    bands = []
    for n in band_rows(inputs.min_rows, inputs.sample_cap):
        logs = [distances.of(w, n) for w in windows if window_length(w) >= n]
        if len(logs) < MIN_WINDOWS:
            break
        table = pd.DataFrame(logs)
        laws = {
            c: ColumnLaw(float(table[c].mean()), float(table[c].std(ddof=1)))
            for c in table.columns
            if table[c].notna().sum() >= MIN_WINDOWS and table[c].std(ddof=1) > 1e-9
        }
        if not laws:
            break
        stats = np.array([max(standardised(lg, laws).values(), default=-math.inf) for lg in logs])
        stats = stats[np.isfinite(stats)]
        tail = tail_law(stats)
        bands.append(Band(n, len(logs), laws, tail, tail_isf(inputs.false_alarm_rate, tail)))
    t = rows[time_col] if len(rows) else pd.Series([0])
    return DriftCalibration(
        false_alarm_rate=inputs.false_alarm_rate,
        window_ms=inputs.window_ms,
        sample_cap=inputs.sample_cap,
        numerical=tuple(numerical),
        categorical=tuple(categorical),
        bands=tuple(bands),
        history={
            "rows": int(len(rows)),
            "windows": len(windows),
            "span_ms": int(t.max() - t.min()),
            "warmup_ms": inputs.warmup_ms,
        },
    )


def band_rows(min_rows: int, cap: int) -> list[int]:
    """min_rows, x sqrt(2), ... while below the cap, then the cap."""
    out, n = [], float(max(2, min_rows))
    while round(n) < cap:
        if not out or round(n) > out[-1]:
            out.append(round(n))
        n *= BAND_RATIO
    out.append(cap)
    return out


TAIL_SHARE = 0.1  # the generalised Pareto law is fitted to the clean windows' top 10%


def tail_law(stats: np.ndarray) -> tuple[float, float, float]:
    """Peaks over a threshold: ``(u, shape, scale)``, ``u`` the clean windows' empirical
    ``1 - TAIL_SHARE`` quantile, shape and scale of a generalised Pareto law fitted to the
    excesses over it (``scipy.stats.genpareto``, location 0)."""
    from scipy.stats import genpareto

    u = float(np.quantile(stats, 1 - TAIL_SHARE))
    shape, _, scale = genpareto.fit(stats[stats > u] - u, floc=0)
    return u, float(shape), float(scale)


def tail_sf(statistic: float, law: tuple[float, float, float]) -> float:
    """P(T > statistic) on a clean window: the fitted tail above ``u``; below it, a p-value
    of at least TAIL_SHARE is all that matters (no verdict comes near), so TAIL_SHARE."""
    from scipy.stats import genpareto

    u, shape, scale = law
    if statistic <= u:
        return TAIL_SHARE if math.isfinite(statistic) else 1.0
    return float(TAIL_SHARE * genpareto.sf(statistic - u, shape, 0, scale))


def tail_isf(rate: float, law: tuple[float, float, float]) -> float:
    from scipy.stats import genpareto

    u, shape, scale = law
    if rate >= TAIL_SHARE:
        raise ValueError(f"a false-alarm rate of {rate} is not in the fitted tail (< {TAIL_SHARE})")
    return u + float(genpareto.isf(rate / TAIL_SHARE, shape, 0, scale))
