"""Judge a shadow candidate against the live model from the shadow topic's records.

Each record is one event scored by both models (``udfs.model_slots.shadow_record``). The
summary, per (live version, candidate version) pair:

- decisions: how often the flag differs, in which direction, and each model's flag rate;
- scores: mean and max absolute difference, quantiles of each, and the two-sample
  Kolmogorov-Smirnov test of the two score distributions (scipy);
- latency: p50 and p99 of each model's ONNX Runtime call, measured side by side on the same
  events in the same worker, and their ratio;
- fairness: disparate impact of each model's decisions across the sensitive attribute (the
  same formula and interval as the live monitor, ``udfs.fairness``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from udfs.fairness import FairnessWindow

QUANTILES = (0.1, 0.5, 0.9, 0.99)


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {f"p{round(q * 100)}": float(np.quantile(x, q)) for q in QUANTILES}


def _fairness(
    rows: list[Mapping[str, Any]],
    group_field: str,
    flag_field: str,
    favourable: int,
    min_count: int,
    four_fifths: float,
) -> dict[str, Any]:
    w = FairnessWindow.of_decisions(
        (r.get(group_field) for r in rows), (r[flag_field] == favourable for r in rows)
    )
    rep = w.report(min_count, four_fifths)
    return {
        "disparate_impact_ratio": rep["disparate_impact_ratio"],
        "disparate_impact_ci95": rep["disparate_impact_ci95"],
        "selection_rate_by_group": {
            g: v.get("selection_rate") for g, v in sorted(rep["groups"].items())
        },
        "alerts": [a for a in rep["alerts"] if a == "disparate_impact"],
    }


def summarize_pair(
    rows: list[Mapping[str, Any]],
    group_field: str | None = None,
    favourable: int = 0,
    min_count: int = 30,
    four_fifths: float = 0.8,
) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    live = np.array([r["live_score"] for r in rows], dtype=np.float64)
    cand = np.array([r["candidate_score"] for r in rows], dtype=np.float64)
    lf = np.array([r["live_flagged"] for r in rows], dtype=np.int64)
    cf = np.array([r["candidate_flagged"] for r in rows], dtype=np.int64)
    lat_l = np.array([r["live_latency_us"] for r in rows], dtype=np.float64)
    lat_c = np.array([r["candidate_latency_us"] for r in rows], dtype=np.float64)
    diff = np.abs(cand - live)
    ks = ks_2samp(live, cand)
    out: dict[str, Any] = {
        "events": len(rows),
        "disagreement_rate": float(np.mean(lf != cf)),
        "newly_flagged": int(np.sum((lf == 0) & (cf == 1))),
        "no_longer_flagged": int(np.sum((lf == 1) & (cf == 0))),
        "flag_rate": {"live": float(lf.mean()), "candidate": float(cf.mean())},
        "mean_abs_score_diff": float(diff.mean()),
        "max_abs_score_diff": float(diff.max()),
        "score_quantiles": {"live": _quantiles(live), "candidate": _quantiles(cand)},
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "latency_us": {
            "live": {"p50": float(np.median(lat_l)), "p99": float(np.quantile(lat_l, 0.99))},
            "candidate": {"p50": float(np.median(lat_c)), "p99": float(np.quantile(lat_c, 0.99))},
        },
    }
    p50_live = out["latency_us"]["live"]["p50"]
    out["latency_p50_ratio"] = (
        out["latency_us"]["candidate"]["p50"] / p50_live if p50_live else None
    )
    if group_field and all(group_field in r for r in rows):
        out["fairness"] = {
            role: _fairness(
                rows, group_field, f"{role}_flagged", favourable, min_count, four_fifths
            )
            for role in ("live", "candidate")
        }
    return out


def summarize(
    records: Iterable[Mapping[str, Any]],
    group_field: str | None = None,
    favourable: int = 0,
    min_count: int = 30,
    four_fifths: float = 0.8,
    id_field: str = "event_id",
) -> list[dict[str, Any]]:
    """One summary per (live version, candidate version), in order of first appearance.

    Records are deduplicated by event id within a pair (an at-least-once job may resend)."""
    pairs: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for i, r in enumerate(records):
        key = (str(r["live_version"]), str(r["candidate_version"]))
        pairs[key].setdefault(str(r.get(id_field, i)), r)
    out = []
    for (live_v, cand_v), by_id in pairs.items():
        s = summarize_pair(list(by_id.values()), group_field, favourable, min_count, four_fifths)
        out.append({"live_version": live_v, "candidate_version": cand_v, **s})
    return out
