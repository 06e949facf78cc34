"""Group fairness over a window: counts in, ratios out (formulas match fairlearn 0.15).

Everything is stated for the *favourable* outcome (in fraud scoring: not being flagged), so
a ratio below the four-fifths threshold means some group gets the good outcome markedly less:

- selection rate SR_g = favourable predictions / predictions; disparate impact = min SR / max SR
  (fairlearn ``demographic_parity_ratio`` on favourable-coded predictions);
- TPR_g = favourable predictions among favourable labels; equal opportunity = min / max
  (``equal_opportunity_ratio``); FPR_g = favourable predictions among unfavourable labels;
  equalized odds ratio = min(TPR ratio, FPR ratio) (``equalized_odds_ratio``).

Groups below ``min_count`` (predictions for SR; labelled positives/negatives for TPR/FPR) are
reported but left out of the ratios; a ratio needs two eligible groups and a non-zero maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Z95 = 1.959963984540054


@dataclass
class GroupCounts:
    n: int = 0  # predictions
    selected: int = 0  # favourable predictions
    positives: int = 0  # labelled favourable
    true_pos: int = 0  # favourable prediction and favourable label
    negatives: int = 0  # labelled unfavourable
    false_pos: int = 0  # favourable prediction, unfavourable label

    def to_list(self) -> list[int]:
        return [
            self.n,
            self.selected,
            self.positives,
            self.true_pos,
            self.negatives,
            self.false_pos,
        ]

    @classmethod
    def from_list(cls, v: list[int]) -> GroupCounts:
        return cls(*v)


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + Z95 * Z95 / n
    c = (p + Z95 * Z95 / (2 * n)) / d
    h = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def _ratio(rates: dict[str, float]) -> float | None:
    if len(rates) < 2:
        return None
    hi = max(rates.values())
    return None if hi == 0 else min(rates.values()) / hi


@dataclass
class FairnessWindow:
    """Counts per group for one window; fed by predictions and, later, by labelled outcomes."""

    groups: dict[str, GroupCounts] = field(default_factory=dict)

    def add_prediction(self, group: str, favourable_pred: bool) -> None:
        g = self.groups.setdefault(group, GroupCounts())
        g.n += 1
        g.selected += int(favourable_pred)

    def add_outcome(self, group: str, favourable_pred: bool, favourable_label: bool) -> None:
        g = self.groups.setdefault(group, GroupCounts())
        if favourable_label:
            g.positives += 1
            g.true_pos += int(favourable_pred)
        else:
            g.negatives += 1
            g.false_pos += int(favourable_pred)

    def snapshot(self) -> dict[str, list[int]]:
        return {k: v.to_list() for k, v in self.groups.items()}

    @classmethod
    def restore(cls, d: dict[str, list[int]]) -> FairnessWindow:
        return cls({k: GroupCounts.from_list(v) for k, v in d.items()})

    def report(self, min_count: int, four_fifths: float = 0.8) -> dict[str, Any]:
        per_group: dict[str, Any] = {}
        sr: dict[str, float] = {}
        tpr: dict[str, float] = {}
        fpr: dict[str, float] = {}
        n_total = labelled = 0
        for name in sorted(self.groups):
            g = self.groups[name]
            n_total += g.n
            labelled += g.positives + g.negatives
            row: dict[str, Any] = {"n": g.n, "labelled": g.positives + g.negatives}
            if g.n:
                row["selection_rate"] = g.selected / g.n
                row["selection_rate_ci95"] = wilson(g.selected, g.n)
                if g.n >= min_count:
                    sr[name] = g.selected / g.n
            if g.positives:
                row["tpr"] = g.true_pos / g.positives
                if g.positives >= min_count:
                    tpr[name] = g.true_pos / g.positives
            if g.negatives:
                row["fpr"] = g.false_pos / g.negatives
                if g.negatives >= min_count:
                    fpr[name] = g.false_pos / g.negatives
            per_group[name] = row
        di = _ratio(sr)
        eo = _ratio(tpr)
        fr = _ratio(fpr)
        eodds = None if eo is None or fr is None else min(eo, fr)
        alerts = []
        if di is not None and di < four_fifths:
            alerts.append("disparate_impact")
        if eo is not None and eo < four_fifths:
            alerts.append("equal_opportunity")
        return {
            "groups": per_group,
            "predictions": n_total,
            "labelled": labelled,
            "label_coverage": labelled / n_total if n_total else 0.0,
            "disparate_impact_ratio": di,
            "equal_opportunity_ratio": eo,
            "equalized_odds_ratio": eodds,
            "alerts": alerts,
        }
