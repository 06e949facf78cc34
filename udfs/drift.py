"""Drift of features and predictions per window, computed with Evidently against a reference.

Evidently is imported lazily (it takes seconds and hundreds of MB): only the drift operator
and the review commands pay for it, never the scoring path.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from udfs.evidently_guard import one_thread_in_evidently
from udfs.windows import iso

if TYPE_CHECKING:
    from models.store.metadata import ModelInput


@dataclass(frozen=True)
class DriftColumns:
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]

    @classmethod
    def of(cls, inputs: Sequence[ModelInput], score: str = "score") -> DriftColumns:
        """The columns drift compares for a model: its inputs (strings categorical) and
        its score."""
        return cls(
            tuple(i.name for i in inputs if i.type != "string") + (score,),
            tuple(i.name for i in inputs if i.type == "string"),
        )

    @property
    def all(self) -> tuple[str, ...]:
        return self.numerical + self.categorical


def quarantine_unreadable_snapshots(path: Path) -> list[Path]:
    """Move snapshot files that are not valid JSON out of the workspace (into
    ``<workspace>/quarantine/``), so one truncated file does not stop every later run from
    opening the workspace; returns the files moved."""
    moved = []
    for f in sorted(path.glob("*/snapshots/*.json")):
        try:
            json.loads(f.read_bytes())
        except ValueError:
            dest = path / "quarantine" / f.parent.parent.name / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            f.replace(dest)
            moved.append(dest)
            print(
                f"rtml: warning: drift snapshot {f} is not valid JSON (cut short?); moved it to "
                f"{dest} so the workspace opens. Delete it, or inspect it if reports are missing.",
                file=sys.stderr,
                flush=True,
            )
    return moved


class ReportWorkspace:
    """The Evidently workspace the drift and fairness snapshots go to (one project per job,
    with the monitoring dashboard: ``udfs.report_dashboard``).

    Two monitors (drift, fairness) may open it at once, from two processes: the project is
    found or created under a file lock, so there is one."""

    LOCK = ".rtml-project.lock"

    @one_thread_in_evidently
    def __init__(
        self, path: Path, project: str, drift_share: float = 0.5, four_fifths: float = 0.8
    ) -> None:
        os.environ.setdefault("DO_NOT_TRACK", "1")
        from evidently.ui.workspace import Workspace

        from udfs.report_dashboard import ensure_dashboard

        self.four_fifths = four_fifths
        path.mkdir(parents=True, exist_ok=True)
        with (path / self.LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.ws = Workspace.create(str(path))
            except ValueError:  # json.JSONDecodeError: a snapshot cut short (a killed writer)
                quarantine_unreadable_snapshots(path)
                self.ws = Workspace.create(str(path))
            found = self.ws.search_project(project)
            self.project = (
                found[0]
                if found
                else self.ws.create_project(
                    project, description="rtml drift and fairness reports per window"
                )
            )
            ensure_dashboard(self.ws, self.project, drift_share, four_fifths)

    @staticmethod
    def has_project(path: Path, project: str) -> bool:
        """Whether the workspace holds a project of that name (read from its files)."""
        for meta in path.glob("*/metadata.json"):
            try:
                if json.loads(meta.read_text()).get("name") == project:
                    return True
            except ValueError:
                continue
        return False

    @one_thread_in_evidently
    def add(self, snapshot: Any, name: str) -> str:
        ref = self.ws.add_run(self.project.id, snapshot, name=name)
        return str(getattr(ref, "id", ref))

    @one_thread_in_evidently
    def add_fairness(self, report: Mapping[str, Any]) -> str:
        """A final window's fairness report, as an Evidently snapshot beside the drift ones."""
        from udfs.report_dashboard import fairness_snapshot

        snap, name = fairness_snapshot(report, self.four_fifths)
        return self.add(snap, name)

    @one_thread_in_evidently
    def add_quality(self, report: Mapping[str, Any], rows: Sequence[Any]) -> str | None:
        """A final window's model quality (an Evidently classification report over its
        labelled predictions); None when it has none."""
        from udfs.report_dashboard import quality_snapshot

        made = quality_snapshot(report, rows)
        return None if made is None else self.add(*made)


class DriftMonitor:
    @one_thread_in_evidently
    def __init__(
        self,
        reference: pd.DataFrame,
        columns: DriftColumns,
        drift_share: float = 0.5,
        workspace: ReportWorkspace | None = None,
    ) -> None:
        os.environ.setdefault("DO_NOT_TRACK", "1")
        from evidently import DataDefinition

        self.columns = columns
        self.drift_share = drift_share
        self.workspace = workspace
        self.definition = DataDefinition(
            numerical_columns=list(columns.numerical), categorical_columns=list(columns.categorical)
        )
        self.reference = self._frame(reference.to_dict("records"))

    def _frame(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        df = pd.DataFrame.from_records(rows, columns=list(self.columns.all))
        for c in self.columns.numerical:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        for c in self.columns.categorical:
            df[c] = df[c].astype(str)
        return df

    @one_thread_in_evidently
    def evaluate(
        self,
        rows: Sequence[Mapping[str, Any]],
        window_start: int,
        window_end: int,
        model_version: str,
        tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        cur = self._frame(rows)
        report = Report([DataDriftPreset(drift_share=self.drift_share)], include_tests=True)
        name = f"drift {iso(window_start)} .. {iso(window_end)} model v{model_version}"
        snap = report.run(
            Dataset.from_pandas(cur, data_definition=self.definition),
            Dataset.from_pandas(self.reference, data_definition=self.definition),
            timestamp=datetime.fromtimestamp(window_end / 1000, tz=UTC).replace(tzinfo=None),
            metadata={
                "window_start": iso(window_start),
                "window_end": iso(window_end),
                "model_version": str(model_version),
                "rows": str(len(cur)),
            },
            tags=["drift", f"model-v{model_version}", *tags],
            name=name,
        )
        summary = summarize(snap.dict())
        summary.update(
            {
                "window_start": window_start,
                "window_end": window_end,
                "model_version": str(model_version),
                "rows": len(cur),
            }
        )
        summary["dataset_drift"] = summary["drift_share"] >= self.drift_share
        if self.workspace is not None:
            summary["report_id"] = self.workspace.add(snap, name)
        return summary


def summarize(d: dict[str, Any]) -> dict[str, Any]:
    """The compact drift event from an Evidently snapshot dict: per-column score and verdict."""
    columns: dict[str, Any] = {}
    share = math.nan
    for m in d.get("metrics", []):
        cfg = m.get("config", {})
        kind = cfg.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif kind.endswith("ValueDrift"):
            columns[cfg["column"]] = {
                "method": cfg.get("method"),
                "threshold": cfg.get("threshold"),
                "score": _num(m["value"]),
            }
    for t in d.get("tests", []):
        params = t.get("metric_config", {}).get("params", {})
        col = params.get("column")
        if col in columns and params.get("type", "").endswith("ValueDrift"):
            status = t.get("status")
            columns[col]["drifted"] = str(getattr(status, "value", status)) == "FAIL"
    return {
        "drift_share": share,
        "drifted_columns": sorted(c for c, v in columns.items() if v.get("drifted")),
        "columns": columns,
    }


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
