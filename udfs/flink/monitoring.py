"""Monitoring operators: fairness and model quality per window with late labels, drift per
window (Evidently). Each monitor is two stages: per bucket of event ids (the pre-aggregation,
``udfs.fairness_monitor`` / ``udfs.drift_sample``), then per window (the merge and the
verdicts), so they scale out and give the same results at any parallelism. These classes only
adapt that logic to PyFlink's state and timers.

They run in the monitors' own job by default, or on their own branch after scoring, in their
own slot (one job: docs/limits.md).
"""

from __future__ import annotations

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
from udfs.drift_sample import DriftCollector, DriftSample
from udfs.fairness_monitor import (
    FairnessCollector,
    FairnessReporter,
    FairnessSettings,
    version_order,
)
from udfs.flink.records import to_json_nan_safe
from udfs.windows import window_label

VERSION_KEY = "__model_version__"  # which model scored a drift sample row


class FairnessFunction(KeyedCoProcessFunction):
    """The fairness monitor's first stage, keyed by bucket of event id: scored events (input
    1) and parsed labels (input 2, any order, any delay) into ``udfs.fairness_monitor``'s
    ``FairnessCollector``, whose partials (per window and boundary) it emits.

    Per event it only *writes* state (the window's counts, the pending prediction by event id,
    the pending label), never a point read of a fresh key: in PyFlink such a read blocks on a
    round trip to the JVM (measured ~5 ms/event for a keyed-by-event-id join). Its state
    names and layout are the one-stage monitor's (uid ``fairness``).
    """

    def __init__(self, cfg: JobConfig, favourable: int, model_version: str) -> None:
        self.settings = FairnessSettings.of(cfg, favourable, model_version)

    def open(self, runtime_context: RuntimeContext):
        self.collector = FairnessCollector(
            self.settings,
            runtime_context.get_map_state(
                MapStateDescriptor("fairness-windows", Types.LONG(), Types.STRING())
            ),
            runtime_context.get_map_state(
                MapStateDescriptor("fairness-pending-predictions", Types.STRING(), Types.STRING())
            ),
            runtime_context.get_list_state(
                ListStateDescriptor("fairness-pending-labels", Types.STRING())
            ),
            runtime_context.get_map_state(
                MapStateDescriptor("fairness-quality", Types.LONG(), Types.STRING())
            ),
        )

    def process_element1(self, value, ctx):
        timers = ctx.timer_service()
        for t in self.collector.on_prediction(value, timers.current_watermark()):
            timers.register_event_time_timer(t)

    def process_element2(self, value, ctx):
        self.collector.on_label(value)

    def on_timer(self, timestamp, ctx):
        yield from self.collector.on_timer(timestamp)


class FairnessReportFunction(KeyedProcessFunction):
    """The fairness monitor's second stage, keyed by window start: the buckets' partials into
    ``FairnessReporter``; emits the reports (JSON) and, on the alerts output, the fairness
    and quality alerts. Final reports also go to the Evidently workspace, if given, with the
    window's quality (``ReportWorkspace.add_fairness`` / ``add_quality``)."""

    def __init__(
        self,
        cfg: JobConfig,
        favourable: int,
        model_version: str,
        alerts: OutputTag,
        workspace: str | None = None,
        registry: str | None = None,
    ) -> None:
        self.settings = FairnessSettings.of(cfg, favourable, model_version)
        self.alerts = alerts
        self.workspace_path = workspace
        self.project = cfg.monitoring.project
        self.drift_share = cfg.monitoring.drift_share
        # the held-out AUC of each model version (the quality alert's reference) comes from it
        self.registry = registry
        self.model_name = cfg.model.name

    def open(self, runtime_context: RuntimeContext):
        self.reporter = FairnessReporter(
            self.settings,
            runtime_context.get_state(ValueStateDescriptor("fairness-report", Types.STRING())),
            runtime_context.get_map_state(
                MapStateDescriptor("fairness-report-pending", Types.LONG(), Types.STRING())
            ),
        )
        self.reports = None  # the workspace, opened at the first final report
        self.held_out: dict[str, float | None] = {}  # a cache of registry files, not state

    def _workspace(self):
        if self.reports is None:
            from udfs.drift import ReportWorkspace

            self.reports = ReportWorkspace(
                Path(self.workspace_path),
                self.project,
                self.drift_share,
                self.settings.four_fifths,
            )
        return self.reports

    def _held_out_auc(self, version: str) -> float | None:
        """The held-out ROC AUC of a model version (its training metrics in the registry);
        None when unknown (no registry given, version gone): then no quality alert."""
        if version not in self.held_out:
            self.held_out[version] = None
            if self.registry:
                from models.store.registry import Registry

                try:
                    mv = Registry(Path(self.registry)).resolve(self.model_name, version)
                except ModelError:
                    return None
                auc = mv.metadata.training.get("metrics", {}).get("roc_auc")
                self.held_out[version] = None if auc is None else float(auc)
        return self.held_out[version]

    def process_element(self, value, ctx):
        ctx.timer_service().register_event_time_timer(self.reporter.on_partial(value))

    def on_timer(self, timestamp, ctx):
        for e in self.reporter.on_timer(timestamp, self._held_out_auc):
            if e.kind == "alert":
                yield self.alerts, to_json_nan_safe(e.record)
                continue
            yield to_json_nan_safe(e.record)
            if e.record["status"] == "final" and self.workspace_path:
                self._workspace().add_fairness(e.record)
                self._workspace().add_quality(e.record, e.sample)


class DriftFunction(KeyedProcessFunction):
    """The drift monitor's first stage, keyed by bucket of event id: each scored event's model
    inputs and score offered to its window's bottom-k sample (``udfs.drift_sample``'s
    ``DriftCollector``); at the window's close, the bucket's partial. State names and layout
    are the one-stage monitor's (uid ``drift``), plus the counters the sample needs."""

    def __init__(self, cfg: JobConfig, version: str) -> None:
        self.size = cfg.monitoring.window_ms
        self.cap = cfg.monitoring.drift_sample_cap
        self.time_field = cfg.schema.event_time
        self.id_field = cfg.schema.event_id
        self.version = version

    def open(self, runtime_context: RuntimeContext):
        def longs(name):
            return runtime_context.get_map_state(
                MapStateDescriptor(name, Types.LONG(), Types.LONG())
            )

        self.collector = DriftCollector(
            self.size,
            self.cap,
            runtime_context.get_map_state(
                MapStateDescriptor("drift-rows", Types.STRING(), Types.STRING())
            ),
            longs("drift-counts"),
            longs("drift-seen"),
            longs("drift-ceiling"),
            runtime_context.get_state(ValueStateDescriptor("drift-first-event", Types.LONG())),
        )

    def process_element(self, value, ctx):
        row = dict(value["inputs"])
        row["score"] = value["score"]
        row[VERSION_KEY] = value.get("model_version", self.version)
        for t in self.collector.on_row(value[self.time_field], str(value[self.id_field]), row):
            ctx.timer_service().register_event_time_timer(t)

    def on_timer(self, timestamp, ctx):
        yield from self.collector.on_timer(timestamp)


class DriftReportFunction(KeyedProcessFunction):
    """The drift monitor's second stage, keyed by window start: the buckets' partials merged
    into the window's sample (``DriftSample``); when the window closes, Evidently compares the
    sample with the reference sample of the model version that scored its rows (each registry
    version holds its own), saves the snapshot to the workspace and emits a compact drift
    event. A window scored by two versions (a hot-swap inside it) gets one event per version.

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
        self.warmup_ms = cfg.features.max_window_ms

    def open(self, runtime_context: RuntimeContext):
        from models.store.registry import Registry

        self.sample = runtime_context.get_state(
            ValueStateDescriptor("drift-sample", Types.STRING())
        )
        self.reg = Registry(Path(self.registry))
        self.model_version = self.reg.resolve(self.cfg.model.name, self.version).metadata.version
        self.monitors = {}  # version -> DriftMonitor: a cache of registry files, not state
        self.calibrated = {}  # version -> its calibrated test (CalibratedDrift) or None: same
        self._monitor(self.model_version)  # the starting version's reference must load

    def _monitor(self, version: str):
        """The drift monitor over ``version``'s own reference sample (loaded once)."""
        if version not in self.monitors:
            import pandas as pd

            from udfs.drift import DriftColumns, DriftMonitor, ReportWorkspace
            from udfs.drift_verdict import CalibratedDrift

            mv = self.reg.resolve(self.cfg.model.name, version)
            columns = DriftColumns.of(mv.metadata.inputs)
            reference = pd.read_parquet(mv.reference_path)
            self.calibrated[version] = CalibratedDrift.of(
                mv.metadata.drift_calibration, reference, columns
            )
            self.monitors[version] = DriftMonitor(
                reference,
                columns,
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
        raw = self.sample.value()
        sample = DriftSample.from_json(raw) if raw else DriftSample(self.cap)
        sample.merge(value)
        self.sample.update(sample.to_json())
        ctx.timer_service().register_event_time_timer(value["window_start"] + self.size - 1)

    def on_timer(self, timestamp, ctx):
        raw = self.sample.value()
        self.sample.clear()
        if not raw:
            return
        sample = DriftSample.from_json(raw)
        ws = timestamp + 1 - self.size
        by_version: dict[str, list[dict]] = {}
        for _, _, row in sample.rows:
            row = dict(row)
            by_version.setdefault(row.pop(VERSION_KEY, self.model_version), []).append(row)
        head = {"window_events": sample.seen, "sample_ids_crc32": sample.ids_digest()}
        warm = sample.first_event is not None and ws < sample.first_event + self.warmup_ms
        for version in sorted(by_version, key=version_order):
            yield from self._evaluate(ws, version, by_version[version], head, warm)

    def _evaluate(self, ws: int, version: str, rows: list[dict], head: dict, warm: bool):
        head = head | {
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
        from udfs.drift_verdict import with_verdict

        summary = monitor.evaluate(rows, ws, ws + self.size, version)
        summary.update(head)
        summary = with_verdict(summary, self.calibrated.get(version), rows)
        if warm:
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
                        "verdict": summary["verdict"],
                        "p_value": summary.get("p_value"),
                        "drifted_columns": summary.get(
                            "calibrated_drifted_columns", summary["drifted_columns"]
                        ),
                        "report_id": summary.get("report_id"),
                        "model_version": version,
                    }
                ),
            )
