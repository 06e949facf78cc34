"""The review dashboard of an rtml project in the Evidently workspace, and the fairness
reports stored beside the drift reports.

The project's dashboard opens on the answer: per window, the drift share (with the job's
threshold) and the number of drifted columns, and the fairness ratios (disparate impact,
equal opportunity, equalized odds) with the four-fifths line; and the model's quality
(precision, recall, ROC AUC, Brier score, with the AUC alert's floor) from the late labels. The drift panels read the
``DriftedColumnsCount`` result of each drift snapshot; the fairness panels read a fairness
snapshot per final window: an Evidently report (``MeanValue`` of each ratio) over a one-row
dataset of that window's figures, with the four-fifths threshold as a constant column, so
the line is drawn beside the ratios.

Evidently is imported lazily (seconds, hundreds of MB): only the monitors and the review
commands pay for it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from udfs.windows import iso

TAB = "Monitoring"
FAIRNESS_TAG = "fairness"
DRIFT_TAG = "drift"
FAIRNESS_RATIOS = ("disparate_impact_ratio", "equal_opportunity_ratio", "equalized_odds_ratio")
FOUR_FIFTHS = "four_fifths"  # the constant column that draws the threshold line
FAIRNESS_COLUMNS = (*FAIRNESS_RATIOS, FOUR_FIFTHS)
QUALITY_TAG = "quality"
AUC_FLOOR = "roc_auc_floor"  # the constant column that draws the quality alert's floor
BRIER = "brier"  # per row: squared error of the score; its mean is the Brier score
PANEL_TITLES = (
    "Drift share per window",
    "Drifted columns per window",
    "Fairness ratios per window",
    "Model quality per window",
)


def monitoring_panels(drift_share: float, four_fifths: float) -> list[Any]:
    """The dashboard's panels, in the order they are shown."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel

    drifted = "evidently:metric_v2:DriftedColumnsCount"
    return [
        line_plot_panel(
            PANEL_TITLES[0],
            [
                PanelMetric(
                    legend="share of drifted columns",
                    tags=[DRIFT_TAG],
                    metric=drifted,
                    metric_labels={"value_type": "share"},
                )
            ],
            description=f"a window drifts when the share is {drift_share:g} or more "
            "([monitoring] drift_share); the first windows, while the features fill, are "
            "warm-up (rtml reports)",
            size="half",
        ),
        bar_plot_panel(
            PANEL_TITLES[1],
            [
                PanelMetric(
                    legend="drifted columns",
                    tags=[DRIFT_TAG],
                    metric=drifted,
                    metric_labels={"value_type": "count"},
                )
            ],
            description="columns whose drift test failed in the window",
            size="half",
        ),
        line_plot_panel(
            PANEL_TITLES[2],
            [
                PanelMetric(
                    legend=column.removesuffix("_ratio").replace("_", " "),
                    tags=[FAIRNESS_TAG],
                    metric="evidently:metric_v2:MeanValue",
                    metric_labels={"column": column},
                )
                for column in FAIRNESS_COLUMNS
            ],
            description=f"final windows; a ratio under the four-fifths line ({four_fifths:g}) "
            "is a breach when its interval is under it too (rtml reports)",
            size="full",
        ),
        line_plot_panel(
            PANEL_TITLES[3],
            [
                PanelMetric(legend=legend, tags=[QUALITY_TAG], metric=f"evidently:metric_v2:{m}")
                for legend, m in (
                    ("precision", "Precision"),
                    ("recall", "Recall"),
                    ("ROC AUC", "RocAuc"),
                )
            ]
            + [
                PanelMetric(
                    legend=legend,
                    tags=[QUALITY_TAG],
                    metric="evidently:metric_v2:MeanValue",
                    metric_labels={"column": column},
                )
                for legend, column in (("Brier score", BRIER), ("AUC alert floor", AUC_FLOOR))
            ],
            description="final windows, from the labels joined so far: the flags' precision and "
            "recall, ROC AUC and Brier score; an AUC whose 95% interval lies under the floor "
            "(held-out AUC minus [monitoring] quality_auc_margin) raises an alert (rtml reports)",
            size="full",
        ),
    ]


def ensure_dashboard(workspace: Any, project: Any, drift_share: float, four_fifths: float) -> bool:
    """Give an Evidently project's dashboard the monitoring panels (in a tab of their own)
    unless it has them; returns whether it added them. The dashboard is saved whole: the
    SDK's ``add_panel`` lists a panel twice in a tab that exists (evidently 0.7.23)."""
    from evidently.sdk.models import DashboardTabModel

    model = project.dashboard.model()
    have = {p.title for p in model.panels}
    missing = [p for p in monitoring_panels(drift_share, four_fifths) if p.title not in have]
    if not missing:
        return False
    model.panels.extend(missing)
    tab = next((t for t in model.tabs if t.title == TAB), None)
    if tab is None:
        tab = DashboardTabModel(title=TAB, panels=[])
        model.tabs.insert(0, tab)
    tab.panels.extend(p.id for p in missing)
    workspace.save_dashboard(project.id, model)
    return True


def _ratio(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def fairness_snapshot(report: Mapping[str, Any], four_fifths: float) -> tuple[Any, str]:
    """An Evidently snapshot of one window's fairness report (a ratio that could not be
    computed, too few rows in a group, is NaN: a gap in the line); returns it and its name."""
    import pandas as pd
    from evidently import DataDefinition, Dataset
    from evidently.metrics import MeanValue

    row = {c: _ratio(report.get(c)) for c in FAIRNESS_RATIOS}
    row[FOUR_FIFTHS] = float(four_fifths)
    frame = pd.DataFrame([row], columns=list(FAIRNESS_COLUMNS)).astype("float64")
    definition = DataDefinition(numerical_columns=list(FAIRNESS_COLUMNS))
    return window_snapshot(
        FAIRNESS_TAG,
        report,
        [MeanValue(column=c) for c in FAIRNESS_COLUMNS],
        Dataset.from_pandas(frame, data_definition=definition),
        {
            "predictions": str(report.get("predictions", "")),
            "labelled": str(report.get("labelled", "")),
            "alerts": ",".join(report.get("alerts") or []) or "none",
        },
    )


def quality_snapshot(
    report: Mapping[str, Any], rows: Sequence[tuple[int, float, bool, bool, str]]
) -> tuple[Any, str] | None:
    """An Evidently classification report over one window's labelled predictions (its
    quality sample: ``udfs.quality``), with the Brier score and the alert floor as mean
    values; None when the window has no labelled prediction. Returns it and its name."""
    if not rows:
        return None
    import pandas as pd
    from evidently import BinaryClassification, DataDefinition, Dataset
    from evidently.metrics import MeanValue, Precision, Recall, RocAuc

    quality = report.get("quality") or {}
    frame = pd.DataFrame(
        {
            "target": [int(r[3]) for r in rows],
            "prediction": [int(r[2]) for r in rows],
            "score": [float(r[1]) for r in rows],
        }
    )
    frame[BRIER] = (frame["score"] - frame["target"]) ** 2
    frame[AUC_FLOOR] = _ratio(quality.get(AUC_FLOOR))
    definition = DataDefinition(
        numerical_columns=["score", BRIER, AUC_FLOOR],
        classification=[
            BinaryClassification(
                target="target", prediction_labels="prediction", prediction_probas="score"
            )
        ],
    )
    metrics: list[Any] = [MeanValue(column=BRIER), MeanValue(column=AUC_FLOOR)]
    if frame["prediction"].any():
        metrics.append(Precision())
    if frame["target"].any():
        metrics.append(Recall())
    if frame["target"].nunique() == 2:
        metrics.append(RocAuc())
    return window_snapshot(
        QUALITY_TAG,
        report,
        metrics,
        Dataset.from_pandas(frame, data_definition=definition),
        {
            "labelled": str(quality.get("labelled_seen", len(rows))),
            "sampled": str(bool(quality.get("sampled"))),
            "alert": str(bool(quality.get("alert"))),
        },
    )


def window_snapshot(
    kind: str, report: Mapping[str, Any], metrics: list[Any], dataset: Any, metadata: dict
) -> tuple[Any, str]:
    """An Evidently report of one window (``kind``: fairness or quality) run over
    ``dataset``, stamped with the window's end, named and tagged by window, model version
    and status; returns it and its name (warnings of undefined ratios silenced)."""
    from evidently import Report

    start, end = int(report["window_start"]), int(report["window_end"])
    version = str(report.get("model_version", ""))
    name = f"{kind} {iso(start)} .. {iso(end)} model v{version}"
    with warnings.catch_warnings():  # a window with one label: its undefined ratios warn
        warnings.simplefilter("ignore")
        snap = Report(metrics).run(
            dataset,
            None,
            timestamp=datetime.fromtimestamp(end / 1000, tz=UTC).replace(tzinfo=None),
            metadata={
                "window_start": iso(start),
                "window_end": iso(end),
                "model_version": version,
                **metadata,
            },
            tags=[kind, f"model-v{version}", str(report.get("status", ""))],
            name=name,
        )
    return snap, name
