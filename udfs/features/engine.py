"""Per-key feature state for one entity: the update/snapshot contract.

``EntityFeatures`` holds everything one key (one account, one merchant) needs to answer its
features: time-tiled moments per (field, window), a capped recent-values map per distinct
field, and the newest event. It is pure Python, serializes to versioned JSON bytes, and is
used unchanged by the Flink keyed function and by the offline (training) replay.

Semantics, identical online and offline:
- Features of an event describe the key's history *before* that event (what was seen
  earlier in arrival order, within the windows ending at the event's own timestamp); then
  the event is added. So ``count_1h`` of a key's first event is 0 and ``time_since_last``
  is NaN.
- An event older than ``allowed_lateness`` behind the newest event of its key is late: it
  is neither scored from nor added to state (the job routes it to the late-events output).
- Out-of-order events within the lateness land in their own tiles, so later events see them.
- Duplicates: the ids of the events within the allowed lateness are remembered (capped), so
  a resent event is recognised (``is_duplicate``) rather than counted twice; an older resend
  is late anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from rtml.core.errors import StateVersionError
from rtml.core.featurespec import MOMENT_AGGREGATIONS, FeatureSet
from udfs.features.tiles import Moments, RecentValues, TileRing

STATE_VERSION = 1
COUNT_FIELD = ""  # the ring that only counts events
SEEN_IDS_CAPACITY = 1024  # per key: ids of events within the allowed lateness


class EntityFeatures:
    __slots__ = ("fs", "rings", "recent", "newest_ts", "last_values", "_distinct_window", "ids")

    def __init__(self, feature_set: FeatureSet) -> None:
        self.fs = feature_set
        self.rings: dict[tuple[str, int], TileRing] = {}
        self.recent: dict[str, RecentValues] = {}
        self._distinct_window: dict[str, int] = {}
        for s in feature_set.specs:
            if s.agg in MOMENT_AGGREGATIONS:
                fld = COUNT_FIELD if s.agg == "count" else s.field
                assert fld is not None and s.window_ms is not None
                self.rings.setdefault(
                    (fld, s.window_ms), TileRing(s.window_ms, feature_set.tiles_per_window)
                )
            elif s.agg == "distinct":
                assert s.field is not None and s.window_ms is not None
                self.recent.setdefault(s.field, RecentValues(feature_set.distinct_capacity))
                self._distinct_window[s.field] = max(
                    self._distinct_window.get(s.field, 0), s.window_ms
                )
        self.newest_ts: int | None = None
        self.last_values: dict[str, list[float]] = {}  # field -> [value, event time of that value]
        self.ids = RecentValues(SEEN_IDS_CAPACITY)  # event ids seen within the allowed lateness

    # -- the contract -------------------------------------------------------------------
    def is_late(self, ts_ms: int) -> bool:
        return self.newest_ts is not None and ts_ms < self.newest_ts - self.fs.allowed_lateness_ms

    def is_duplicate(self, event_id: str) -> bool:
        """True when an event with this id was observed (with ``event_id``) within the
        allowed lateness of the key's newest event."""
        return event_id in self.ids.seen

    def is_expired(self, now_ms: int) -> bool:
        return self.newest_ts is None or now_ms >= self.newest_ts + self.fs.ttl_ms

    def features(self, ts_ms: int, record: Mapping[str, Any]) -> dict[str, float]:
        """The key's features for an event at ``ts_ms``, from history before that event."""
        out: dict[str, float] = {}
        moments: dict[tuple, Moments] = {}  # one sum over a ring's tiles per event
        for s in self.fs.specs:
            agg = s.agg
            if agg in MOMENT_AGGREGATIONS:
                ring = (COUNT_FIELD if agg == "count" else s.field, s.window_ms)
                m = moments.get(ring)
                if m is None:
                    m = moments[ring] = self.rings[ring].moments(ts_ms)  # type: ignore[index]
                if agg == "count":
                    v = m.count
                elif agg == "sum":
                    v = m.total
                elif agg == "mean":
                    v = m.mean
                elif agg == "std":
                    v = m.std
                elif agg == "min":
                    v = m.minimum
                elif agg == "max":
                    v = m.maximum
                else:
                    x = record.get(s.field)  # type: ignore[arg-type]
                    if x is None:
                        v = math.nan
                    elif agg == "zscore":
                        sd = m.std
                        v = (x - m.mean) / sd if m.count >= 2 and sd > 0 else math.nan
                    else:  # ratio
                        mean = m.mean
                        v = x / mean if m.count and mean != 0 else math.nan
            elif agg == "distinct":
                v = float(self.recent[s.field].distinct(ts_ms, s.window_ms))  # type: ignore[index,arg-type]
            elif agg == "last":
                lv = self.last_values.get(s.field)  # type: ignore[arg-type]
                v = math.nan if lv is None else lv[0]
            else:  # time_since_last, seconds
                v = math.nan if self.newest_ts is None else max(0, ts_ms - self.newest_ts) / 1000.0
            out[s.name] = float(v)
        return out

    def update(self, ts_ms: int, record: Mapping[str, Any], event_id: str | None = None) -> None:
        if event_id is not None:
            self.ids.add(ts_ms, event_id)
        for (fld, _), ring in self.rings.items():
            if fld == COUNT_FIELD:
                ring.add(ts_ms, 0.0)
            else:
                x = record.get(fld)
                if x is not None:
                    ring.add(ts_ms, float(x))
        for fld, rv in self.recent.items():
            x = record.get(fld)
            if x is not None:
                rv.add(ts_ms, str(x))
        if self.newest_ts is None or ts_ms >= self.newest_ts:
            self.newest_ts = ts_ms
        for s in self.fs.specs:
            if s.agg == "last":
                x = record.get(s.field)  # type: ignore[arg-type]
                prev = self.last_values.get(s.field)  # type: ignore[arg-type]
                # the newest event (by event time) carrying the field; ties: latest arrival
                if x is not None and (prev is None or ts_ms >= prev[1]):
                    self.last_values[s.field] = [float(x), ts_ms]  # type: ignore[index]
        self._evict()

    def observe(
        self, ts_ms: int, record: Mapping[str, Any], event_id: str | None = None
    ) -> dict[str, float]:
        """Features from history, then add the event: what the job does for each event.
        With ``event_id``, the id is remembered for ``is_duplicate``."""
        feats = self.features(ts_ms, record)
        self.update(ts_ms, record, event_id)
        return feats

    def _evict(self) -> None:
        if self.newest_ts is None:
            return
        horizon = self.newest_ts - self.fs.allowed_lateness_ms
        for (_, window), ring in self.rings.items():
            ring.evict_before(horizon - window)
        for fld, rv in self.recent.items():
            rv.evict_before(horizon - self._distinct_window[fld])
        self.ids.evict_before(horizon)

    # -- serialization ------------------------------------------------------------------
    def snapshot(self) -> bytes:
        doc = {
            "v": STATE_VERSION,
            "n": self.newest_ts,
            "l": self.last_values,
            "r": {
                f"{fld}|{w}|{ring.width_ms}": ring.snapshot()
                for (fld, w), ring in self.rings.items()
                if ring.tiles
            },
            "d": {fld: rv.snapshot() for fld, rv in self.recent.items() if rv.seen},
        }
        if self.ids.seen:
            doc["i"] = self.ids.snapshot()
        return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()

    @classmethod
    def restore(cls, feature_set: FeatureSet, data: bytes) -> EntityFeatures:
        """Rebuild from ``snapshot()`` bytes.

        Migration between feature sets is by name: rings and maps that the new feature set
        still declares are kept, new ones start empty, dropped ones are discarded.
        """
        doc = json.loads(data)
        version = doc.get("v")
        if version != STATE_VERSION:
            raise StateVersionError(
                f"per-key feature state has layout version {version!r}, this rtml reads version {STATE_VERSION}",
                hint="restore from a savepoint taken by a compatible rtml, or start the job without the savepoint",
            )
        st = cls(feature_set)
        st.newest_ts = doc["n"]
        st.last_values = {
            k: [float(v[0]), int(v[1])]
            for k, v in doc["l"].items()
            if any(s.agg == "last" and s.field == k for s in feature_set.specs)
        }
        for key, rows in doc["r"].items():
            fld, w, width = key.rsplit("|", 2)
            ring = st.rings.get((fld, int(w)))
            if ring is not None and ring.width_ms == int(width):  # a re-tiled window starts empty
                ring.restore(rows)
        for fld, rows in doc["d"].items():
            rv = st.recent.get(fld)
            if rv is not None:
                rv.restore(rows)
        st.ids.restore(doc.get("i", []))  # absent in snapshots from before de-duplication
        return st
