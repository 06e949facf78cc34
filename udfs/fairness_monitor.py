"""The fairness monitor's logic, without PyFlink: per event-time window, the predictions'
counts per group, the late labels joined by event id, and the reports and alerts.

It runs in two stages, so that it scales out and gives the same reports at any parallelism:

1. ``FairnessCollector``, one per *bucket* of event ids (``udfs.sampling.bucket_of``: an
   event's prediction and its label meet in the same bucket). Per event it only writes
   state: the window's counts, the pending prediction by event id, the pending label. At each
   window boundary (event time) it joins the pending labels to the pending predictions in
   bulk, counts the outcomes into the prediction's windows, and emits each window it holds as
   a *partial*: its cumulative counts, labelled-prediction sample and model versions. After
   the window's last boundary (the label time-out) it drops the window.
2. ``FairnessReporter``, one per window: it merges the partials of a boundary (counts add;
   samples merge as bottom-k; ``udfs.quality``) and, at that boundary, emits the report:
   ``provisional`` when the window closes, ``update`` at each further window length while
   labels arrive, ``final`` once the label time-out has passed, each with the model quality;
   alerts once per change of the breached ratios, and the quality alert on the final report.

The contract, as the adapters (``udfs/flink/monitoring.py``) and the tests use it:
``on_prediction(record, watermark) -> timers``, ``on_label(record)``,
``on_timer(timestamp) -> partials`` for a collector; ``on_partial(partial) -> timer``,
``on_timer(timestamp, held_out_auc) -> emissions`` for a reporter. State lives in stores the
caller gives (Flink map, list and value state; dicts and lists offline); ``snapshot`` /
``restore`` copy it out and back. Stored values are JSON strings: the Flink layout of the
one-stage monitor before it, which a collector reads as its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from rtml.core.config import JobConfig
from udfs.fairness import FairnessWindow, fairness_report, group_cells
from udfs.quality import QualityWindow
from udfs.windows import window_label, windows_for


class KeyValueStore(Protocol):
    def get(self, key: Any) -> Any: ...
    def put(self, key: Any, value: Any) -> None: ...
    def remove(self, key: Any) -> None: ...
    def items(self) -> Iterable[tuple[Any, Any]]: ...


class ListStore(Protocol):
    def get(self) -> Iterable[Any] | None: ...
    def add(self, value: Any) -> None: ...
    def update(self, values: list[Any]) -> None: ...


class ValueStore(Protocol):
    def value(self) -> Any: ...
    def update(self, value: Any) -> None: ...
    def clear(self) -> None: ...


class DictStore(dict):
    """A ``KeyValueStore`` in memory (tests, offline runs)."""

    def put(self, key: Any, value: Any) -> None:
        self[key] = value

    def remove(self, key: Any) -> None:
        self.pop(key, None)


class PlainList:
    """A ``ListStore`` in memory."""

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self.values = list(values)

    def get(self) -> list[Any]:
        return list(self.values)

    def add(self, value: Any) -> None:
        self.values.append(value)

    def update(self, values: list[Any]) -> None:
        self.values = list(values)


class PlainValue:
    """A ``ValueStore`` in memory."""

    def __init__(self, v: Any = None) -> None:
        self.v = v

    def value(self) -> Any:
        return self.v

    def update(self, value: Any) -> None:
        self.v = value

    def clear(self) -> None:
        self.v = None


def version_order(v: str) -> tuple[int, str]:
    return (int(v) if v.isdigit() else -1, v)


@dataclass(frozen=True)
class FairnessSettings:
    size: int  # window length (ms)
    slide: int  # windows start every slide (= size: tumbling)
    timeout: int  # label time-out (ms): the final report comes once it has passed
    min_count: int
    four_fifths: float
    group_fields: tuple[str, ...]  # the sensitive fields (the first: the groups' own field)
    time_field: str
    id_field: str
    positive: int  # the positive label
    favourable: int  # the favourable prediction (0: not flagged)
    model_version: str  # the job's starting version (records without one)
    quality_cap: int
    quality_margin: float

    @property
    def rounds(self) -> int:
        """Boundaries after the window's close until the final report."""
        return -(-self.timeout // self.size)

    def boundary(self, ws: int, k: int) -> int:
        """The event time of window ``ws``'s ``k``-th boundary (0: it closes)."""
        return ws + self.size * (k + 1) - 1

    @classmethod
    def of(cls, cfg: JobConfig, favourable: int, model_version: str) -> FairnessSettings:
        m = cfg.monitoring
        return cls(
            size=m.window_ms,
            slide=m.slide_ms,
            timeout=cfg.labels.timeout_ms,
            min_count=m.min_group_count,
            four_fifths=m.four_fifths,
            group_fields=cfg.schema.sensitive_attributes or ("",),
            time_field=cfg.schema.event_time,
            id_field=cfg.schema.event_id,
            positive=cfg.labels.positive,
            favourable=favourable,
            model_version=model_version,
            quality_cap=m.quality_sample_cap,
            quality_margin=m.quality_auc_margin,
        )


class FairnessCollector:
    """One bucket of event ids (see the module docstring). Stores: ``windows`` (window start
    -> JSON {"c": counts, "v": versions}), ``preds`` (event id -> JSON [time, group,
    favourable, score, flagged]), ``labels`` (JSON [event id, label, time]) and ``quality``
    (window start -> JSON labelled sample: apart from the counts, which every prediction
    rewrites, so that a prediction does not rewrite the sample)."""

    def __init__(
        self,
        s: FairnessSettings,
        windows: KeyValueStore,
        preds: KeyValueStore,
        labels: ListStore,
        quality: KeyValueStore,
    ) -> None:
        self.s, self.windows, self.preds, self.labels = s, windows, preds, labels
        self.quality = quality

    def _sample_snapshot(self, ws: int) -> dict[str, Any]:
        """The window's labelled sample as stored (a snapshot: trimmed, in key order)."""
        raw = self.quality.get(ws)
        return QualityWindow(self.s.quality_cap).snapshot() if raw is None else json.loads(raw)

    def _sample(self, ws: int) -> QualityWindow:
        return QualityWindow.restore(self._sample_snapshot(ws))

    def on_prediction(self, value: dict[str, Any], watermark: int) -> list[int]:
        """Count a scored event into its windows; returns the timers to register (each new
        window's boundaries)."""
        s = self.s
        ts = value[s.time_field]
        group, cells = group_cells(value, s.group_fields)
        fav = (1 if value["flagged"] else 0) == s.favourable
        version = value.get("model_version", s.model_version)
        timers: list[int] = []
        for ws in windows_for(ts, s.size, s.slide):
            raw = self.windows.get(ws)
            if raw is None:
                if s.boundary(ws, s.rounds) < watermark:
                    continue  # that window was finalized already
                timers.extend(s.boundary(ws, k) for k in range(s.rounds + 1))
                doc: dict[str, Any] = {"c": {}}
            else:
                doc = json.loads(raw)
            w = FairnessWindow.restore(doc["c"])
            for g in (group, *cells):
                w.add_prediction(g, fav)
            doc["c"] = w.snapshot()
            versions = doc.setdefault("v", [])
            if version not in versions:
                versions.append(version)
            self.windows.put(ws, json.dumps(doc))
        self.preds.put(
            value[s.id_field],
            json.dumps([ts, group, fav, value.get("score"), bool(value["flagged"]), cells]),
        )
        return timers

    def on_label(self, value: dict[str, Any]) -> None:
        self.labels.add(json.dumps([value["event_id"], value["label"], value["label_time"]]))

    def _join_labels(self, now: int) -> None:
        s = self.s
        labels = [json.loads(x) for x in (self.labels.get() or [])]
        if not labels:
            return
        pending = {k: json.loads(v) for k, v in self.preds.items()}
        # each touched window read once and written once, whatever its number of labels
        docs: dict[int, dict] = {}
        counts: dict[int, FairnessWindow] = {}
        samples: dict[int, QualityWindow] = {}
        keep = []
        favourable_is_positive = self.s.favourable == self.s.positive
        for eid, label, label_time in labels:
            pred = pending.pop(eid, None)
            if pred is None:
                if label_time + s.timeout > now:
                    keep.append(json.dumps([eid, label, label_time]))  # its prediction may come
                continue
            # score, flag and further cells (older state: without)
            ts, group, fav_pred, *scored = pred
            cells = scored[2] if len(scored) > 2 else []
            positive = label == s.positive
            fav_label = positive == favourable_is_positive
            for ws in windows_for(ts, s.size, s.slide):
                if ws not in docs:
                    raw = self.windows.get(ws)
                    if raw is None:
                        continue  # finalized: the label came after the time-out
                    docs[ws] = json.loads(raw)
                    counts[ws] = FairnessWindow.restore(docs[ws]["c"])
                for g in (group, *cells):
                    counts[ws].add_outcome(g, fav_pred, fav_label)
                if scored and scored[0] is not None:
                    if ws not in samples:
                        samples[ws] = self._sample(ws)
                    samples[ws].add(eid, scored[0], scored[1], positive, group)
            self.preds.remove(eid)
        for ws, doc in docs.items():
            doc["c"] = counts[ws].snapshot()
            self.windows.put(ws, json.dumps(doc))
        for ws, q in samples.items():
            self.quality.put(ws, json.dumps(q.snapshot()))
        self.labels.update(keep)
        for eid, (ts, *_) in pending.items():
            if ts + s.timeout <= now:
                self.preds.remove(eid)  # never labelled within the time-out

    def on_timer(self, timestamp: int) -> list[dict[str, Any]]:
        """Join the labels, then emit every window whose boundary this is as a partial
        (``window_start``, ``boundary`` k, counts ``c``, sample ``q``, versions ``v``)."""
        s = self.s
        self._join_labels(timestamp)
        out = []
        for ws, raw in list(self.windows.items()):
            k, rem = divmod(timestamp + 1 - ws - s.size, s.size)
            if rem or not 0 <= k <= s.rounds:
                continue
            doc = json.loads(raw)
            out.append(
                {
                    "window_start": ws,
                    "boundary": k,
                    "c": doc["c"],
                    "q": self._sample_snapshot(ws),
                    "v": doc.get("v") or [s.model_version],
                }
            )
            if k == s.rounds:
                self.windows.remove(ws)
                self.quality.remove(ws)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "windows": dict(self.windows.items()),
            "preds": dict(self.preds.items()),
            "labels": list(self.labels.get() or []),
            "quality": dict(self.quality.items()),
        }

    @classmethod
    def restore(cls, s: FairnessSettings, snap: dict[str, Any]) -> FairnessCollector:
        return cls(
            s,
            DictStore(snap["windows"]),
            DictStore(snap["preds"]),
            PlainList(snap["labels"]),
            DictStore(snap["quality"]),
        )


@dataclass(frozen=True)
class Emission:
    kind: str  # "report" or "alert"
    record: dict[str, Any]
    # a final report's labelled sample (the workspace's quality snapshot is computed on it)
    sample: tuple[Any, ...] = ()


class FairnessReporter:
    """One window (see the module docstring). Stores: ``state``, one JSON document of what
    was emitted ("ws", "emitted_labelled", "alerted"), and ``pending``, the merged partials of
    each boundary still to come (k -> JSON counts, sample, versions): apart, so that a
    partial rewrites its own boundary only (at the end of a bounded stream every boundary's
    partials arrive before the first of their timers)."""

    def __init__(self, s: FairnessSettings, state: ValueStore, pending: KeyValueStore) -> None:
        self.s, self.state, self.pending = s, state, pending

    def on_partial(self, partial: dict[str, Any]) -> int:
        """Merge one bucket's partial into its boundary's; returns that boundary's timer.
        (Buckets run ahead of each other: partials of a later boundary may come first.)"""
        s = self.s
        if not self.state.value():
            self.state.update(json.dumps({"ws": partial["window_start"], "emitted_labelled": -1}))
        k = int(partial["boundary"])
        raw = self.pending.get(k)
        part = (
            json.loads(raw)
            if raw
            else {"c": {}, "q": QualityWindow(s.quality_cap).snapshot(), "v": []}
        )
        part["c"] = (
            FairnessWindow.restore(part["c"]).merge(FairnessWindow.restore(partial["c"])).snapshot()
        )
        part["q"] = (
            QualityWindow.restore(part["q"]).merge(QualityWindow.restore(partial["q"])).snapshot()
        )
        part["v"] = sorted(set(part["v"]) | set(partial["v"]), key=version_order)
        self.pending.put(k, json.dumps(part))
        return s.boundary(partial["window_start"], partial["boundary"])

    def on_timer(
        self, timestamp: int, held_out_auc: Callable[[str], float | None]
    ) -> list[Emission]:
        s = self.s
        raw = self.state.value()
        if not raw:
            return []
        doc = json.loads(raw)
        ws = doc["ws"]
        k, rem = divmod(timestamp + 1 - ws - s.size, s.size)
        raw_part = None if rem else self.pending.get(k)
        if raw_part is None:
            return []
        self.pending.remove(k)
        part = json.loads(raw_part)
        report = fairness_report(FairnessWindow.restore(part["c"]), s.min_count, s.four_fifths)
        final = k == s.rounds
        out: list[Emission] = []
        if final or k == 0 or report["labelled"] != doc["emitted_labelled"]:
            versions = part["v"] or [s.model_version]
            quality = QualityWindow.restore(part["q"])
            report.update(
                {
                    "window_start": ws,
                    "window_end": ws + s.size,
                    "window": window_label(ws, s.size),
                    "status": "final" if final else ("provisional" if k == 0 else "update"),
                    "model_versions": versions,  # the versions that scored the window, in order
                    "model_version": versions[-1],
                }
            )
            report["quality"] = quality.report(
                s.min_count, held_out_auc(versions[-1]), s.quality_margin
            )
            out.append(Emission("report", report, tuple(quality.sample()) if final else ()))
            if report["alerts"] and report["alerts"] != doc.get("alerted"):
                doc["alerted"] = report["alerts"]
                out.append(Emission("alert", fairness_alert(report)))
            if final and report["quality"]["alert"]:
                out.append(Emission("alert", quality_alert(report)))
        doc["emitted_labelled"] = report["labelled"]
        if final:
            self.state.clear()
        else:
            self.state.update(json.dumps(doc))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state.value(), "pending": dict(self.pending.items())}

    @classmethod
    def restore(cls, s: FairnessSettings, snap: dict[str, Any]) -> FairnessReporter:
        return cls(s, PlainValue(snap["state"]), DictStore(snap["pending"]))


def fairness_alert(report: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "window",
        "window_start",
        "alerts",
        "disparate_impact_ratio",
        "disparate_impact_ci95",
        "equal_opportunity_ratio",
        "equal_opportunity_ci95",
        "status",
        "model_versions",
    )
    return {"type": "fairness", **{k: report[k] for k in keys}}


def quality_alert(report: dict[str, Any]) -> dict[str, Any]:
    q = report["quality"]
    return {
        "type": "quality",
        "window": report["window"],
        "window_start": report["window_start"],
        "alerts": ["roc_auc"],
        **{
            k: q[k]
            for k in ("roc_auc", "roc_auc_ci95", "roc_auc_floor", "held_out_roc_auc", "next_step")
        },
        "status": report["status"],
        "model_versions": report["model_versions"],
    }
