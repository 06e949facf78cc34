"""Monitoring operators: fairness per window with late labels, drift per window (Evidently).

They sit on their own branch after scoring, in their own slot (and so their own Python
worker process). That keeps Evidently out of the scoring worker, but it does not keep the
monitors from slowing scoring down (docs/limits.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from pyflink.common import Types
from pyflink.datastream import (
    KeyedCoProcessFunction,
    KeyedProcessFunction,
    OutputTag,
    RuntimeContext,
)
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor

from rtml.core.config import JobConfig
from rtml.core.errors import ModelError
from udfs.fairness import FairnessWindow
from udfs.flink.records import to_json_nan_safe
from udfs.quality import QualityWindow
from udfs.windows import window_label, window_start, windows_for

VERSION_KEY = "__model_version__"  # which model scored a drift sample row


def _version_order(v: str) -> tuple[int, str]:
    return (int(v) if v.isdigit() else -1, v)


class FairnessFunction(KeyedCoProcessFunction):
    """Group fairness per event-time window (tumbling, or sliding with ``[monitoring] slide``),
    with late labels joined in state.

    Input 1: scored events; input 2: parsed labels (any order, any delay). Per event the
    operator only *writes* state (the window's prediction counts, the pending prediction by
    event id, or the pending label), never a point read of a fresh key: in PyFlink such a read
    blocks on a round trip to the JVM (measured ~5 ms/event for a keyed-by-event-id join).
    At each window boundary (event time) pending labels are joined to pending predictions in
    bulk, outcomes are counted into the prediction's window, and reports are emitted as JSON:
    ``provisional`` when the window closes, ``update`` at each further window length while
    labels arrive, ``final`` once the label time-out has passed; then the window is dropped.
    Predictions whose label has not come within the time-out count as unlabelled.
    """

    def __init__(
        self,
        cfg: JobConfig,
        favourable: int,
        model_version: str,
        alerts: OutputTag,
        workspace: str | None = None,
        registry: str | None = None,
    ) -> None:
        self.alerts = alerts
        # the held-out AUC of each model version (the quality alert's reference) comes from it
        self.registry = registry
        self.model_name = cfg.model.name
        self.quality_cap = cfg.monitoring.quality_sample_cap
        self.quality_margin = cfg.monitoring.quality_auc_margin
        # final reports also go to the Evidently workspace (the review dashboard), if given
        self.workspace_path = workspace
        self.project = cfg.monitoring.project
        self.drift_share = cfg.monitoring.drift_share
        m = cfg.monitoring
        self.size = m.window_ms
        self.slide = m.slide_ms
        self.min_count = m.min_group_count
        self.four_fifths = m.four_fifths
        self.timeout = cfg.labels.timeout_ms
        self.rounds = -(-cfg.labels.timeout_ms // m.window_ms)  # re-emissions until final
        self.group_field = cfg.schema.sensitive_attribute
        self.time_field = cfg.schema.event_time
        self.id_field = cfg.schema.event_id
        self.positive = cfg.labels.positive
        self.favourable = favourable
        self.model_version = model_version

    def open(self, runtime_context: RuntimeContext):
        self.windows = runtime_context.get_map_state(
            MapStateDescriptor("fairness-windows", Types.LONG(), Types.STRING())
        )
        self.preds = runtime_context.get_map_state(
            MapStateDescriptor("fairness-pending-predictions", Types.STRING(), Types.STRING())
        )
        self.labels = runtime_context.get_list_state(
            ListStateDescriptor("fairness-pending-labels", Types.STRING())
        )

    def _workspace(self):
        """Opened at the first final report (Evidently's import takes seconds)."""
        if getattr(self, "reports", None) is None:
            from udfs.drift import ReportWorkspace

            self.reports = ReportWorkspace(
                Path(self.workspace_path), self.project, self.drift_share, self.four_fifths
            )
        return self.reports

    def _quality(self, doc: dict) -> QualityWindow:
        q = doc.get("q")
        return QualityWindow(self.quality_cap) if q is None else QualityWindow.restore(q)

    def _held_out_auc(self, version: str) -> float | None:
        """The held-out ROC AUC of a model version (its training metrics in the registry);
        None when unknown (no registry given, version gone): then no quality alert."""
        cache = getattr(self, "held_out", None)
        if cache is None:
            cache = self.held_out = {}
        if version not in cache:
            cache[version] = None
            if self.registry:
                from models.store.registry import Registry

                try:
                    mv = Registry(Path(self.registry)).resolve(self.model_name, version)
                    auc = mv.metadata.training.get("metrics", {}).get("roc_auc")
                    cache[version] = None if auc is None else float(auc)
                except ModelError:
                    pass
        return cache[version]

    def _window(self, ws: int, ctx) -> dict | None:
        raw = self.windows.get(ws)
        if raw is not None:
            return json.loads(raw)
        if ws + self.size * (self.rounds + 1) <= ctx.timer_service().current_watermark():
            return None  # finalized already
        for k in range(self.rounds + 1):
            ctx.timer_service().register_event_time_timer(ws + self.size * (k + 1) - 1)
        return {"c": {}, "emitted_labelled": -1}

    def process_element1(self, value, ctx):
        ts = value[self.time_field]
        group = str(value.get(self.group_field))
        fav = (1 if value["flagged"] else 0) == self.favourable
        for ws in windows_for(ts, self.size, self.slide):
            doc = self._window(ws, ctx)
            if doc is None:
                continue  # that window was finalized already
            w = FairnessWindow.restore(doc["c"])
            w.add_prediction(group, fav)
            doc["c"] = w.snapshot()
            version = value.get("model_version", self.model_version)
            versions = doc.setdefault("v", [])
            if version not in versions:
                versions.append(version)
            self.windows.put(ws, json.dumps(doc))
        self.preds.put(
            value[self.id_field],
            json.dumps([ts, group, fav, value.get("score"), bool(value["flagged"])]),
        )

    def process_element2(self, value, ctx):
        self.labels.add(json.dumps([value["event_id"], value["label"], value["label_time"]]))

    def _join_labels(self, now: int) -> None:
        labels = [json.loads(x) for x in (self.labels.get() or [])]
        if not labels:
            return
        pending = {k: json.loads(v) for k, v in self.preds.items()}
        docs: dict[int, dict] = {}
        keep = []
        for eid, label, label_time in labels:
            pred = pending.pop(eid, None)
            if pred is None:
                if label_time + self.timeout > now:
                    keep.append(
                        json.dumps([eid, label, label_time])
                    )  # its prediction may still come
                continue
            ts, group, fav_pred, *scored = pred  # score and flag (older state: without)
            fav_label = (1 if label == self.positive else 0) == (
                1 if self.favourable == self.positive else 0
            )
            for ws in windows_for(ts, self.size, self.slide):
                if ws not in docs:
                    raw = self.windows.get(ws)
                    if raw is None:
                        continue  # that window was finalized: the label came after the time-out
                    docs[ws] = json.loads(raw)
                w = FairnessWindow.restore(docs[ws]["c"])
                w.add_outcome(group, fav_pred, fav_label)
                docs[ws]["c"] = w.snapshot()
                if scored and scored[0] is not None:
                    q = self._quality(docs[ws])
                    q.add(eid, scored[0], scored[1], label == self.positive, group)
                    docs[ws]["q"] = q.snapshot()
            self.preds.remove(eid)
        for ws, doc in docs.items():
            self.windows.put(ws, json.dumps(doc))
        self.labels.update(keep)
        for eid, (ts, *_) in pending.items():
            if ts + self.timeout <= now:
                self.preds.remove(eid)  # never labelled within the time-out

    def on_timer(self, timestamp, ctx):

        self._join_labels(timestamp)
        done = []
        for ws, raw in list(self.windows.items()):
            k, rem = divmod(timestamp + 1 - ws - self.size, self.size)
            if rem or not 0 <= k <= self.rounds:
                continue
            doc = json.loads(raw)
            report = FairnessWindow.restore(doc["c"]).report(self.min_count, self.four_fifths)
            final = k == self.rounds
            if final or k == 0 or report["labelled"] != doc["emitted_labelled"]:
                report.update(
                    {
                        "window_start": ws,
                        "window_end": ws + self.size,
                        "window": window_label(ws, self.size),
                        "status": "final" if final else ("provisional" if k == 0 else "update"),
                        # the versions that scored the window's events, in order of first use
                        "model_versions": doc.get("v") or [self.model_version],
                    }
                )
                report["model_version"] = report["model_versions"][-1]
                quality = self._quality(doc)
                report["quality"] = quality.report(
                    self.min_count, self._held_out_auc(report["model_version"]), self.quality_margin
                )
                yield to_json_nan_safe(report)
                if final and self.workspace_path:
                    self._workspace().add_fairness(report)
                    self._workspace().add_quality(report, quality.sample())
                if final and report["quality"]["alert"]:
                    q = report["quality"]
                    yield (
                        self.alerts,
                        to_json_nan_safe(
                            {
                                "type": "quality",
                                "window": report["window"],
                                "window_start": ws,
                                "alerts": ["roc_auc"],
                                "roc_auc": q["roc_auc"],
                                "roc_auc_ci95": q["roc_auc_ci95"],
                                "roc_auc_floor": q["roc_auc_floor"],
                                "held_out_roc_auc": q["held_out_roc_auc"],
                                "next_step": q["next_step"],
                                "status": report["status"],
                                "model_versions": report["model_versions"],
                            }
                        ),
                    )
                if report["alerts"] and report["alerts"] != doc.get("alerted"):
                    doc["alerted"] = report["alerts"]
                    yield (
                        self.alerts,
                        to_json_nan_safe(
                            {
                                "type": "fairness",
                                "window": report["window"],
                                "window_start": ws,
                                "alerts": report["alerts"],
                                "disparate_impact_ratio": report["disparate_impact_ratio"],
                                "disparate_impact_ci95": report["disparate_impact_ci95"],
                                "equal_opportunity_ratio": report["equal_opportunity_ratio"],
                                "equal_opportunity_ci95": report["equal_opportunity_ci95"],
                                "status": report["status"],
                                "model_versions": report["model_versions"],
                            }
                        ),
                    )
            doc["emitted_labelled"] = report["labelled"]
            if final:
                done.append(ws)
            else:
                self.windows.put(ws, json.dumps(doc))
        for ws in done:
            self.windows.remove(ws)


class DriftFunction(KeyedProcessFunction):
    """Collects each window's rows in state; when the window closes, Evidently compares them
    with the reference sample of the model version that scored them (each registry version
    holds its own), saves the snapshot to the workspace and emits a compact drift event. A
    window scored by two versions (a hot-swap inside it) gets one event per version.

    Windows that start before the job's first event plus the longest feature window are
    ``warmup``: their windowed features cannot yet cover a full span (the keyed state is
    still filling), so they are evaluated and saved but never raise a drift verdict.
    """

    def __init__(
        self, cfg: JobConfig, registry: str, version: str, workspace: str, alerts: OutputTag
    ) -> None:
        self.alerts = alerts
        self.cfg = cfg
        self.registry = registry
        self.version = version
        self.workspace = workspace
        self.size = cfg.monitoring.window_ms
        self.cap = cfg.monitoring.drift_sample_cap
        self.min_rows = cfg.monitoring.drift_min_rows
        self.time_field = cfg.schema.event_time
        self.id_field = cfg.schema.event_id
        self.warmup_ms = cfg.features.max_window_ms

    def open(self, runtime_context: RuntimeContext):
        from models.store.registry import Registry

        self.rows = runtime_context.get_map_state(
            MapStateDescriptor("drift-rows", Types.STRING(), Types.STRING())
        )
        self.counts = runtime_context.get_map_state(
            MapStateDescriptor("drift-counts", Types.LONG(), Types.LONG())
        )
        self.first_event = runtime_context.get_state(
            ValueStateDescriptor("drift-first-event", Types.LONG())
        )
        self.reg = Registry(Path(self.registry))
        self.model_version = self.reg.resolve(self.cfg.model.name, self.version).metadata.version
        self.monitors = {}  # version -> DriftMonitor: a cache of registry files, not state
        self._monitor(self.model_version)  # the starting version's reference must load

    def _monitor(self, version: str):
        """The drift monitor over ``version``'s own reference sample (loaded once)."""
        if version not in self.monitors:
            import pandas as pd

            from udfs.drift import DriftColumns, DriftMonitor, ReportWorkspace

            mv = self.reg.resolve(self.cfg.model.name, version)
            cats = tuple(i.name for i in mv.metadata.inputs if i.type == "string")
            nums = tuple(i.name for i in mv.metadata.inputs if i.type != "string") + ("score",)
            self.monitors[version] = DriftMonitor(
                pd.read_parquet(mv.reference_path),
                DriftColumns(nums, cats),
                self.cfg.monitoring.drift_share,
                ReportWorkspace(
                    Path(self.workspace),
                    self.cfg.monitoring.project,
                    self.cfg.monitoring.drift_share,
                    self.cfg.monitoring.four_fifths,
                ),
            )
        return self.monitors[version]

    def process_element(self, value, ctx):
        ts = value[self.time_field]
        first = self.first_event.value()
        if first is None or ts < first:
            self.first_event.update(ts)
        ws = window_start(ts, self.size)
        n = self.counts.get(ws)
        if n is None:
            n = 0
            ctx.timer_service().register_event_time_timer(ws + self.size - 1)
        if n >= self.cap:
            return  # the first `cap` events of a window are its sample
        row = dict(value["inputs"])
        row["score"] = value["score"]
        row[VERSION_KEY] = value.get("model_version", self.model_version)
        self.rows.put(f"{ws}|{value[self.id_field]}", json.dumps(row))
        self.counts.put(ws, n + 1)

    def on_timer(self, timestamp, ctx):
        ws = timestamp + 1 - self.size
        prefix = f"{ws}|"
        keys = [k for k in self.rows.keys() if k.startswith(prefix)]
        by_version: dict[str, list[dict]] = {}
        for k in keys:
            row = json.loads(self.rows.get(k))
            by_version.setdefault(row.pop(VERSION_KEY, self.model_version), []).append(row)
            self.rows.remove(k)
        self.counts.remove(ws)
        for version in sorted(by_version, key=_version_order):
            yield from self._evaluate(ws, version, by_version.get(version, []))

    def _evaluate(self, ws: int, version: str, rows: list[dict]):
        head = {
            "window_start": ws,
            "window_end": ws + self.size,
            "window": window_label(ws, self.size),
            "model_version": version,
        }
        if len(rows) < self.min_rows:
            yield to_json_nan_safe(
                head
                | {
                    "status": "insufficient_data",
                    "rows": len(rows),
                    "min_rows": self.min_rows,
                    "dataset_drift": None,
                }
            )
            return
        try:
            monitor = self._monitor(version)
        except ModelError as e:  # the version's files are gone from the registry
            yield to_json_nan_safe(
                head
                | {
                    "status": "no_reference",
                    "rows": len(rows),
                    "reason": str(e),
                    "dataset_drift": None,
                }
            )
            return
        summary = monitor.evaluate(rows, ws, ws + self.size, version)
        summary["window"] = head["window"]
        first = self.first_event.value()
        if first is not None and ws < first + self.warmup_ms:
            summary["status"] = "warmup"
            summary["dataset_drift"] = None
        else:
            summary["status"] = "drift" if summary["dataset_drift"] else "ok"
        yield to_json_nan_safe(summary)
        if summary["status"] == "drift":
            yield (
                self.alerts,
                to_json_nan_safe(
                    {
                        "type": "drift",
                        "window": summary["window"],
                        "window_start": ws,
                        "drift_share": summary["drift_share"],
                        "drifted_columns": summary["drifted_columns"],
                        "report_id": summary.get("report_id"),
                        "model_version": version,
                    }
                ),
            )
