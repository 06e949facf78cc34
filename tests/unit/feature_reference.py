"""A brute-force reference of the feature semantics: raw event lists, no tiles, no eviction.

It is written from the documented semantics (udfs/features/engine.py), independently of the
engine's data structures, so the conformance suite can compare the two on any input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rtml.core.featurespec import FeatureSet


def reference_features(
    events: list[dict[str, Any]], fs: FeatureSet, key: str = "k"
) -> list[dict[str, float] | None]:
    """Features per event (None when late) for a stream of events of possibly many keys."""
    history: dict[str, list[dict[str, Any]]] = {}
    out: list[dict[str, float] | None] = []
    for ev in events:
        ts = ev["ts"]
        h = history.setdefault(ev[key], [])
        if h and ts >= max(e["ts"] for e in h) + fs.ttl_ms:
            h.clear()  # idle key expired
        if h and ts < max(e["ts"] for e in h) - fs.allowed_lateness_ms:
            out.append(None)
            continue
        out.append(_features(h, ev, fs))
        h.append(ev)
    return out


def _features(h: list[dict[str, Any]], ev: dict[str, Any], fs: FeatureSet) -> dict[str, float]:
    ts = ev["ts"]
    res: dict[str, float] = {}
    for s in fs.specs:
        if s.agg == "time_since_last":
            res[s.name] = math.nan if not h else max(0, ts - max(e["ts"] for e in h)) / 1000.0
            continue
        if s.agg == "last":
            # the value of the newest event (by event time) carrying the field; ties: latest arrival
            best = None
            for e in h:
                if e.get(s.field) is not None and (best is None or e["ts"] >= best["ts"]):
                    best = e
            res[s.name] = math.nan if best is None else float(best[s.field])
            continue
        w = s.window_ms
        if s.agg == "distinct":
            last_seen: dict[str, int] = {}
            for e in h:
                v = e.get(s.field)
                if v is not None:
                    last_seen[str(v)] = max(last_seen.get(str(v), -(10**18)), e["ts"])
            res[s.name] = float(sum(1 for t in last_seen.values() if ts - w < t <= ts))
            continue
        width = max(1, w // fs.tiles_per_window)
        cur = ts // width
        inwin = [e for e in h if cur - fs.tiles_per_window < e["ts"] // width <= cur]
        if s.agg == "count":
            res[s.name] = float(len(inwin))
            continue
        xs = np.array([float(e[s.field]) for e in inwin if e.get(s.field) is not None])
        n = len(xs)
        if s.agg == "sum":
            v = float(xs.sum()) if n else 0.0
        elif s.agg == "mean":
            v = float(xs.mean()) if n else math.nan
        elif s.agg == "std":
            v = float(xs.std()) if n else math.nan
        elif s.agg == "min":
            v = float(xs.min()) if n else math.nan
        elif s.agg == "max":
            v = float(xs.max()) if n else math.nan
        else:
            x = ev.get(s.field)
            if x is None:
                v = math.nan
            elif s.agg == "zscore":
                sd = float(xs.std()) if n else math.nan
                v = (
                    (x - xs.mean()) / sd
                    if n >= 2 and sd > 1e-9 * max(1.0, abs(xs.mean()))
                    else math.nan
                )
            else:  # ratio
                v = x / xs.mean() if n and xs.mean() != 0 else math.nan
        res[s.name] = v
    return res
