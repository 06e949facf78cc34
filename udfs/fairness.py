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

Each ratio comes with a 95% interval: the Katz log interval of the ratio of the two
proportions it compares (the lowest-rate group over the highest-rate group). It treats those two
groups as fixed, so with many groups it is somewhat narrow. An alert is raised only when the
*whole* interval lies below the four-fifths threshold (a breach with confidence); a point
estimate below it whose interval reaches above is reported as a ``watch``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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


def ratio_ci(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float] | None:
    """95% Katz log interval of (k1/n1) / (k2/n2); None when a count is zero."""
    if min(k1, k2, n1, n2) <= 0:
        return None
    r = (k1 / n1) / (k2 / n2)
    se = math.sqrt(max(1 / k1 - 1 / n1 + 1 / k2 - 1 / n2, 0.0))
    return (r * math.exp(-Z95 * se), r * math.exp(Z95 * se))


def _ratio(rates: dict[str, tuple[int, int]]) -> tuple[float | None, tuple[float, float] | None]:
    """min/max of k/n over groups, and the interval of that ratio."""
    if len(rates) < 2:
        return None, None
    lo_g = min(rates, key=lambda g: rates[g][0] / rates[g][1])
    hi_g = max(rates, key=lambda g: rates[g][0] / rates[g][1])
    (k1, n1), (k2, n2) = rates[lo_g], rates[hi_g]
    if k2 == 0:
        return None, None
    return (k1 / n1) / (k2 / n2), ratio_ci(k1, n1, k2, n2)


@dataclass
class FairnessWindow:
    """Counts per group for one window; fed by predictions and, later, by labelled outcomes."""

    groups: dict[str, GroupCounts] = field(default_factory=dict)

    @classmethod
    def of_decisions(cls, groups: Iterable[object], favourable: Iterable[bool]) -> FairnessWindow:
        """A window holding predictions only: one per (group, favourable decision) pair."""
        w = cls()
        for g, fav in zip(groups, favourable, strict=True):
            w.add_prediction(str(g), bool(fav))
        return w

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

    def merge(self, other: FairnessWindow) -> FairnessWindow:
        """The window counted over both parts (counts add: associative and commutative)."""
        out = FairnessWindow.restore(self.snapshot())
        for name, g in other.groups.items():
            mine = out.groups.setdefault(name, GroupCounts())
            out.groups[name] = GroupCounts(
                *(a + b for a, b in zip(mine.to_list(), g.to_list(), strict=True))
            )
        return out

    def snapshot(self) -> dict[str, list[int]]:
        return {k: v.to_list() for k, v in self.groups.items()}

    @classmethod
    def restore(cls, d: dict[str, list[int]]) -> FairnessWindow:
        return cls({k: GroupCounts.from_list(v) for k, v in d.items()})

    def report(self, min_count: int, four_fifths: float = 0.8) -> dict[str, Any]:
        per_group: dict[str, Any] = {}
        sr: dict[str, tuple[int, int]] = {}
        tpr: dict[str, tuple[int, int]] = {}
        fpr: dict[str, tuple[int, int]] = {}
        base: dict[str, tuple[int, int]] = {}
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
                    sr[name] = (g.selected, g.n)
            labelled_g = g.positives + g.negatives
            if labelled_g:
                row["favourable_label_rate"] = g.positives / labelled_g
                if labelled_g >= min_count:
                    base[name] = (g.positives, labelled_g)
            if g.positives:
                row["tpr"] = g.true_pos / g.positives
                if g.positives >= min_count:
                    tpr[name] = (g.true_pos, g.positives)
            if g.negatives:
                row["fpr"] = g.false_pos / g.negatives
                if g.negatives >= min_count:
                    fpr[name] = (g.false_pos, g.negatives)
            per_group[name] = row
        di, di_ci = _ratio(sr)
        eo, eo_ci = _ratio(tpr)
        fr, _ = _ratio(fpr)
        br, br_ci = _ratio(base)
        eodds = None if eo is None or fr is None else min(eo, fr)
        alerts: list[str] = []
        watch: list[str] = []
        for name, value, ci in (("disparate_impact", di, di_ci), ("equal_opportunity", eo, eo_ci)):
            if value is None or value >= four_fifths:
                continue
            (alerts if ci is not None and ci[1] < four_fifths else watch).append(name)
        return {
            "groups": per_group,
            "predictions": n_total,
            "labelled": labelled,
            "label_coverage": labelled / n_total if n_total else 0.0,
            "disparate_impact_ratio": di,
            "disparate_impact_ci95": di_ci,
            "equal_opportunity_ratio": eo,
            "equal_opportunity_ci95": eo_ci,
            "equalized_odds_ratio": eodds,
            "label_base_rate_ratio": br,  # favourable-label rate, min/max over groups: bias in the labels themselves
            "label_base_rate_ci95": br_ci,
            "alerts": alerts,  # breaches of the four-fifths rule with 95% confidence
            "watch": watch,  # point estimate below the threshold, interval reaching above it
        }


# Intersectional groups: with several sensitive fields, a window's counts hold the first
# field's groups under their plain value (as with one field), and every other view, each
# further field and the intersection of all, under "<view><DIM_SEP><value>".
DIM_SEP = "\x1f"


def group_cells(record: dict[str, Any], fields: tuple[str, ...]) -> tuple[str, list[str]]:
    """An event's group under the first sensitive field, and its cell in every other view:
    each further field, then the intersection of all of them ("a&b" = "x&y")."""
    values = [str(record.get(f)) for f in fields]
    if len(fields) < 2:
        return values[0], []
    cells = [f"{f}{DIM_SEP}{v}" for f, v in zip(fields[1:], values[1:], strict=True)]
    cells.append(f"{'&'.join(fields)}{DIM_SEP}{'&'.join(values)}")
    return values[0], cells


def fairness_report(
    window: FairnessWindow, min_count: int, four_fifths: float = 0.8
) -> dict[str, Any]:
    """The window's report under the first sensitive field, and, with several, the report of
    every other view in ``by_attribute`` (each cell gated by ``min_count`` on its own); an
    alert of another view is listed as ``<view>:<ratio>``."""
    first = FairnessWindow({g: c for g, c in window.groups.items() if DIM_SEP not in g})
    report = first.report(min_count, four_fifths)
    views: dict[str, FairnessWindow] = {}
    for g, c in window.groups.items():
        if DIM_SEP in g:
            view, value = g.split(DIM_SEP, 1)
            views.setdefault(view, FairnessWindow()).groups[value] = c
    if views:
        report["by_attribute"] = {}
        for view in sorted(views, key=lambda v: (v.count("&"), v)):
            r = views[view].report(min_count, four_fifths)
            report["by_attribute"][view] = r
            report["alerts"] = report["alerts"] + [f"{view}:{a}" for a in r["alerts"]]
            report["watch"] = report["watch"] + [f"{view}:{a}" for a in r["watch"]]
    return report
