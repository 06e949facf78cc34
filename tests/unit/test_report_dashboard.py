"""The review dashboard: the project rtml creates has the drift and fairness panels, and the
Evidently UI (the real server, over HTTP) gives each panel one point per window, equal to
the drift summaries and the fairness reports the monitors emitted."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

from tests.evidently_ui import get, post, serving
from udfs.drift import DriftColumns, DriftMonitor, ReportWorkspace
from udfs.quality import QualityWindow
from udfs.report_dashboard import FAIRNESS_RATIOS, PANEL_TITLES, TAB, quality_snapshot

HOUR = 3_600_000
START = 1_767_225_600_000  # 2026-01-01


def _labelled(i: int) -> QualityWindow:
    """Window i's labelled predictions: the model gets worse window by window."""
    rng = np.random.default_rng(10 + i)
    y = rng.random(400) < 0.3
    s = np.clip(rng.normal(0.35 + (0.3 - 0.1 * i) * y, 0.2), 0, 1)
    w = QualityWindow(10_000)
    for k in range(400):
        w.add(f"w{i}-{k}", s[k], s[k] >= 0.5, y[k], rng.choice(["a", "b"]))
    return w


def _fairness(i: int) -> dict:
    return {
        "window_start": START + 6 * HOUR * i,
        "window_end": START + 6 * HOUR * (i + 1),
        "status": "final",
        "model_version": "3",
        "disparate_impact_ratio": 0.9 - 0.1 * i,
        "equal_opportunity_ratio": math.nan if i == 1 else 0.95,  # too few positives
        "equalized_odds_ratio": 0.85,
        "predictions": 100,
        "labelled": 40,
        "alerts": ["disparate_impact"] if i == 2 else [],
        "quality": _labelled(i).report(30, held_out_auc=0.85, margin=0.05),
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    path = tmp_path_factory.mktemp("workspace")
    ws = ReportWorkspace(path, "cards", drift_share=0.3, four_fifths=0.8)
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"amount": rng.normal(size=400), "channel": rng.choice(["a", "b"], 400)})
    monitor = DriftMonitor(ref, DriftColumns(("amount",), ("channel",)), 0.3, ws)
    drift = []
    for i in range(3):
        rows = pd.DataFrame(
            {"amount": rng.normal(loc=1.5 * i, size=300), "channel": rng.choice(["a", "b"], 300)}
        ).to_dict("records")
        start = START + 6 * HOUR * i
        drift.append(monitor.evaluate(rows, start, start + 6 * HOUR, "3"))
        ws.add_fairness(_fairness(i))
        ws.add_quality(_fairness(i), _labelled(i).sample())
    return path, ws, drift


def test_the_project_has_the_monitoring_panels_once(workspace):
    path, ws, _ = workspace
    model = ws.project.dashboard.model()
    assert [p.title for p in model.panels] == list(PANEL_TITLES)
    (tab,) = model.tabs
    assert tab.title == TAB and tab.panels == [p.id for p in model.panels]
    share = model.panels[0]
    assert "0.3" in share.subtitle
    # reopened (the other monitor, a restart, `rtml ui`): the same project, no second set
    again = ReportWorkspace(path, "cards", drift_share=0.3, four_fifths=0.8)
    assert again.project.id == ws.project.id
    assert len(again.project.dashboard.model().panels) == len(PANEL_TITLES)
    assert ReportWorkspace.has_project(path, "cards")
    assert not ReportWorkspace.has_project(path, "other")


def test_the_ui_serves_one_point_per_window_for_each_panel(workspace):
    path, ws, drift = workspace
    with serving(path) as base:
        (project,) = get(f"{base}/api/projects")
        pid = project["id"]
        dashboard = get(f"{base}/api/v2/dashboards/{pid}")
        assert [p["title"] for p in dashboard["panels"]] == list(PANEL_TITLES)
        points = {}
        for panel in dashboard["panels"]:
            filters = [
                {k: v[k] for k in ("metric", "metric_labels", "tags", "metadata")}
                for v in panel["values"]
            ]
            got = post(
                f"{base}/api/v2/snapshots/{pid}/data_series_batch", {"series_filter": filters}
            )
            points[panel["title"]] = {
                (s["filter_index"], s["params"].get("column")): s["values"] for s in got["series"]
            }
            assert len(got["sources"]) == 3, panel["title"]  # one snapshot per window

    (share,) = points[PANEL_TITLES[0]].values()
    assert share == pytest.approx([d["drift_share"] for d in drift])
    assert share[0] < 0.3 <= share[2]  # a clean window, then a drifted one
    (count,) = points[PANEL_TITLES[1]].values()
    assert count == [len(d["drifted_columns"]) for d in drift]
    fairness = points[PANEL_TITLES[2]]
    for i, ratio in enumerate(FAIRNESS_RATIOS):
        want = [_fairness(w)[ratio] for w in range(3)]
        have = fairness[(i, ratio)]
        assert [None if math.isnan(x) else pytest.approx(x) for x in want] == have
    assert fairness[(3, "four_fifths")] == [0.8, 0.8, 0.8]
    quality = points[PANEL_TITLES[3]]
    want = {"precision": [], "recall": [], "auc": [], "brier": []}
    for w in range(3):
        rows = _labelled(w).sample()
        y = np.array([r[3] for r in rows])
        f = np.array([r[2] for r in rows])
        sc = np.array([r[1] for r in rows])
        want["precision"].append(precision_score(y, f))
        want["recall"].append(recall_score(y, f))
        want["auc"].append(roc_auc_score(y, sc))
        want["brier"].append(brier_score_loss(y, sc))
    assert quality[(0, None)] == pytest.approx(want["precision"])
    assert quality[(1, None)] == pytest.approx(want["recall"])
    assert quality[(2, None)] == pytest.approx(want["auc"])
    assert quality[(3, "brier")] == pytest.approx(want["brier"])
    assert quality[(4, "roc_auc_floor")] == pytest.approx([0.8, 0.8, 0.8])
    # the report's own figures (udfs.quality) are the ones Evidently computed
    assert [_fairness(w)["quality"]["roc_auc"] for w in range(3)] == pytest.approx(want["auc"])


def test_a_window_without_labels_has_no_quality_snapshot_and_one_label_has_no_auc():
    report = _fairness(0)
    assert quality_snapshot(report, []) is None
    w = QualityWindow(100)
    for k in range(50):
        w.add(k, 0.1 + k / 100, k % 2 == 0, False, "a")  # no positive label in the window
    snap, name = quality_snapshot(report, w.sample())
    kinds = {m["config"]["type"].rsplit(":", 1)[-1] for m in snap.dict()["metrics"]}
    assert kinds == {"MeanValue", "Precision"} and name.startswith("quality ")
