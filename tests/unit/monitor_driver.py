"""Runs the pure monitors (udfs/fairness_monitor.py, udfs/drift_sample.py) as the Flink job
does, without a JVM: records keyed by bucket of event id into collectors, their partials keyed
by window start into reporters, event-time timers per key fired in timestamp order when the
watermark passes them, a stage's outputs delivered before the watermark moves downstream."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from udfs.drift_sample import DriftCollector, DriftSample
from udfs.fairness_monitor import (
    DictStore,
    Emission,
    FairnessCollector,
    FairnessReporter,
    FairnessSettings,
    PlainList,
    PlainValue,
)
from udfs.sampling import bucket_of


class Timers:
    def __init__(self) -> None:
        self.by_key: dict[Any, set[int]] = defaultdict(set)

    def register(self, key: Any, ts: int) -> None:
        self.by_key[key].add(ts)

    def due(self, watermark: int) -> list[tuple[int, Any]]:
        """Timers at or before the watermark, in (time, key) order, removed."""
        out = []
        for key, ts in self.by_key.items():
            out.extend((t, key) for t in ts if t <= watermark)
            ts.difference_update({t for t in ts if t <= watermark})
        return sorted(out, key=lambda x: (x[0], str(x[1])))


class FairnessDriver:
    """The fairness monitor's two stages over ``buckets`` buckets."""

    def __init__(self, s: FairnessSettings, buckets: int, held_out: float | None = None) -> None:
        self.s, self.buckets, self.held_out = s, buckets, held_out
        self.collectors: dict[str, FairnessCollector] = {}
        self.reporters: dict[int, FairnessReporter] = {}
        self.c_timers, self.r_timers = Timers(), Timers()
        self.watermark = -(2**63)
        self.emitted: list[Emission] = []

    def _collector(self, eid: str) -> tuple[str, FairnessCollector]:
        b = bucket_of(eid, self.buckets)
        if b not in self.collectors:
            self.collectors[b] = FairnessCollector(
                self.s, DictStore(), DictStore(), PlainList(), DictStore()
            )
        return b, self.collectors[b]

    def prediction(self, record: dict[str, Any]) -> None:
        b, c = self._collector(record[self.s.id_field])
        for t in c.on_prediction(record, self.watermark):
            self.c_timers.register(b, t)

    def label(self, record: dict[str, Any]) -> None:
        self._collector(record["event_id"])[1].on_label(record)

    def advance(self, watermark: int) -> None:
        if watermark <= self.watermark:
            return
        self.watermark = watermark
        for t, b in self.c_timers.due(watermark):
            for p in self.collectors[b].on_timer(t):
                ws = p["window_start"]
                r = self.reporters.setdefault(
                    ws, FairnessReporter(self.s, PlainValue(), DictStore())
                )
                self.r_timers.register(ws, r.on_partial(p))
        for t, ws in self.r_timers.due(watermark):
            self.emitted.extend(self.reporters[ws].on_timer(t, lambda v: self.held_out))

    def restart(self) -> None:
        """Every collector and reporter restored from its snapshot (as after a failure)."""
        self.collectors = {
            b: FairnessCollector.restore(self.s, c.snapshot()) for b, c in self.collectors.items()
        }
        self.reporters = {
            ws: FairnessReporter.restore(self.s, r.snapshot()) for ws, r in self.reporters.items()
        }

    def reports(self) -> list[dict[str, Any]]:
        return [e.record for e in self.emitted if e.kind == "report"]


class DriftDriver:
    """The drift sample's two stages over ``buckets`` buckets; ``samples`` by window start."""

    def __init__(self, size: int, cap: int, buckets: int) -> None:
        self.size, self.cap, self.buckets = size, cap, buckets
        self.collectors: dict[str, DriftCollector] = {}
        self.timers = Timers()
        self.watermark = -(2**63)
        self.samples: dict[int, DriftSample] = {}

    def row(self, ts: int, eid: str, row: dict[str, Any]) -> None:
        b = bucket_of(eid, self.buckets)
        if b not in self.collectors:
            self.collectors[b] = DriftCollector(
                self.size,
                self.cap,
                DictStore(),
                DictStore(),
                DictStore(),
                DictStore(),
                PlainValue(),
            )
        for t in self.collectors[b].on_row(ts, eid, row):
            self.timers.register(b, t)

    def advance(self, watermark: int) -> None:
        self.watermark = max(self.watermark, watermark)
        for t, b in self.timers.due(watermark):
            for p in self.collectors[b].on_timer(t):
                self.samples.setdefault(p["window_start"], DriftSample(self.cap)).merge(p)
