"""Model quality over a window, from the labelled predictions (the late labels joined by id).

A window keeps its labelled predictions themselves, ``(key, score, flagged, positive, group)``,
up to a
cap: a bottom-k sample by ``key``, a stable hash of the event id (crc32, never Python's salted
``hash()``). Below the cap every labelled prediction is kept, so the figures are exact; above
it the sample is uniform over the window, not its first rows. Bottom-k samples merge exactly
(the union's k smallest keys), in any order and grouping, so windows counted in parts give the
same figures as one count.

Figures (overall and per group), stated for the *positive* label (``[labels] positive``,
in fraud scoring: fraud) and the decision the model took (flagged: its score at or above the
threshold of the model version that scored the event):

- precision and recall of the flags;
- ROC AUC (Mann-Whitney, ties counted half) with a 95% DeLong interval;
- average precision (as scikit-learn's ``average_precision_score``: the precision at each
  distinct score, weighted by the recall it adds);
- Brier score (mean squared error of the score) and expected calibration error (ten
  equal-width score bins: the row-weighted mean of |observed positive rate - mean score|).

A figure that needs both labels (AUC, AP) is ``None`` when a window or group has one; a group
with fewer labelled rows than ``min_count`` is reported with ``below_min_count``. The quality
alert compares the *upper* end of the window's AUC interval with the model's held-out AUC
minus a margin: it fires only when the window's AUC is below that floor with confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from udfs.sampling import stable_key

Z95 = 1.959963984540054
ECE_BINS = 10
NEXT_STEP = "rtml train --from-log"  # retrain on the logged, labelled traffic


Row = tuple[int, float, bool, bool, str]  # (stable key, score, flagged, positive label, group)


@dataclass
class QualityWindow:
    """The labelled predictions of one window: a bottom-k sample by stable key (see the module
    docstring), and how many labelled predictions it was drawn from."""

    cap: int
    rows: list[Row] = field(default_factory=list)
    seen: int = 0  # labelled predictions counted, kept or not

    def add(
        self, event_id: object, score: float, flagged: bool, positive: bool, group: str
    ) -> None:
        self.rows.append(
            (stable_key(event_id), float(score), bool(flagged), bool(positive), str(group))
        )
        self.seen += 1
        if len(self.rows) > 2 * self.cap:  # trim now and then, not at every row
            self._trim()

    def _trim(self) -> None:
        if len(self.rows) > self.cap:
            self.rows = sorted(self.rows)[: self.cap]

    def merge(self, other: QualityWindow) -> QualityWindow:
        """The window counted over both parts' predictions (associative and commutative)."""
        out = QualityWindow(
            min(self.cap, other.cap), self.rows + other.rows, self.seen + other.seen
        )
        out._trim()
        return out

    def sample(self) -> list[Row]:
        """The rows the figures are computed on, in key order."""
        self._trim()
        return sorted(self.rows)

    def snapshot(self) -> dict[str, Any]:
        return {"cap": self.cap, "seen": self.seen, "rows": [list(r) for r in self.sample()]}

    @classmethod
    def restore(cls, d: dict[str, Any]) -> QualityWindow:
        rows = [(int(k), float(s), bool(f), bool(p), str(g)) for k, s, f, p, g in d.get("rows", [])]
        return cls(int(d["cap"]), rows, int(d.get("seen", len(rows))))

    def report(
        self,
        min_count: int,
        held_out_auc: float | None = None,
        margin: float = 0.05,
    ) -> dict[str, Any]:
        rows = self.sample()
        scores = np.array([r[1] for r in rows], dtype="float64")
        flagged = np.array([r[2] for r in rows], dtype=bool)
        labels = np.array([r[3] for r in rows], dtype=bool)
        groups = np.array([r[4] for r in rows], dtype=object)
        overall = figures(scores, flagged, labels)
        per_group = {}
        for g in sorted(set(groups.tolist())):
            sel = groups == g
            row = figures(scores[sel], flagged[sel], labels[sel])
            row["below_min_count"] = int(sel.sum()) < min_count
            per_group[g] = row
        floor = None if held_out_auc is None else held_out_auc - margin
        ci = overall["roc_auc_ci95"]
        alert = floor is not None and ci is not None and ci[1] < floor
        return {
            **overall,
            "labelled_seen": self.seen,
            "sampled": len(rows) < self.seen,
            "held_out_roc_auc": held_out_auc,
            "roc_auc_floor": floor,
            "alert": alert,
            "next_step": NEXT_STEP if alert else None,
            "groups": per_group,
        }


def figures(scores: np.ndarray, flagged: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Quality figures of one set of labelled predictions (see the module docstring)."""
    n = int(len(scores))
    pos = int(labels.sum())
    tp = int((flagged & labels).sum())
    auc, ci = roc_auc_delong(scores, labels)
    return {
        "rows": n,
        "positives": pos,
        "precision": tp / int(flagged.sum()) if flagged.any() else None,
        "recall": tp / pos if pos else None,
        "roc_auc": auc,
        "roc_auc_ci95": ci,
        "average_precision": average_precision(scores, labels),
        "brier": float(np.mean((scores - labels) ** 2)) if n else None,
        "ece": expected_calibration_error(scores, labels),
    }


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, ties given their mean rank."""
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def roc_auc_delong(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[float | None, tuple[float, float] | None]:
    """ROC AUC and its 95% DeLong interval (clipped to [0, 1]); ``(None, None)`` without both
    labels, and no interval with a single row of a label."""
    x, y = scores[labels], scores[~labels]  # positives, negatives
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        return None, None
    ranks = _midranks(np.concatenate([x, y]))
    auc = float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))
    if m < 2 or n < 2:
        return auc, None
    v10 = (ranks[:m] - _midranks(x)) / n  # per positive: share of negatives below it
    v01 = 1.0 - (ranks[m:] - _midranks(y)) / m  # per negative: share of positives above it
    se = math.sqrt(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    return auc, (max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float | None:
    pos = int(labels.sum())
    if pos == 0 or pos == len(labels):
        return None
    order = np.argsort(-scores, kind="stable")
    s, lab = scores[order], labels[order]
    tps = np.cumsum(lab)
    fps = np.cumsum(~lab)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each distinct score
    precision = tps[last] / (tps[last] + fps[last])
    recall = tps[last] / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def expected_calibration_error(
    scores: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float | None:
    n = len(scores)
    if n == 0:
        return None
    idx = np.clip((scores * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() / n * abs(labels[sel].mean() - scores[sel].mean())
    return float(total)
