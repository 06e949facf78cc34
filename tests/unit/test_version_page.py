"""The reviewer's page of a model version: every window it scored (and only those) with its
drift and fairness verdicts, the alerts that name it, its shadow comparisons, its held-out
figures and its model card; a version the registry lacks is said so."""

from __future__ import annotations

import pytest

from models.dataset import build_dataset
from models.export import export
from models.store.registry import Registry
from models.train import train
from rtml.cli.commands.review import Verdicts
from rtml.cli.commands.version_page import versions_in, write_version_pages
from rtml.cli.scenarios.cards import ScenarioOptions, generate

HOUR = 3_600_000


@pytest.fixture(scope="module")
def registry(cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    sc = generate(ScenarioOptions(seed=5, events=3000, days=1, bias=0.2))
    train(cfg, build_dataset(cfg, sc.events, sc.labels), root / "a", progress=lambda m: None)
    reg = Registry(root / "registry")
    mv = export(root / "a", reg, progress=lambda m: None)
    return reg, mv.metadata.version


def _drift(i: int, version: str, status: str) -> dict:
    return {
        "window_start": i * 6 * HOUR,
        "window": f"w{i}",
        "status": status,
        "drift_share": 0.5 if status == "drift" else 0.1,
        "drifted_columns": ["amount"] if status == "drift" else [],
        "model_version": version,
    }


def _fair(i: int, versions: list[str], alerts: list[str]) -> dict:
    return {
        "window_start": i * 6 * HOUR,
        "window": f"w{i}",
        "status": "final",
        "model_versions": versions,
        "model_version": versions[-1],
        "disparate_impact_ratio": 0.7,
        "equal_opportunity_ratio": 0.9,
        "equalized_odds_ratio": 0.85,
        "alerts": alerts,
        # window 1's model quality fell under its floor (the quality alert)
        "quality": {
            "rows": 400,
            "precision": 0.61,
            "recall": 0.72,
            "roc_auc": 0.64 if i == 1 else 0.91,
            "roc_auc_ci95": [0.58, 0.70] if i == 1 else [0.88, 0.94],
            "average_precision": 0.55,
            "brier": 0.081,
            "ece": 0.032,
            "alert": i == 1,
        },
    }


def test_one_page_per_version_with_its_windows_alerts_and_shadow(cfg, registry, tmp_path):
    reg, v1 = registry
    v = Verdicts(
        fairness=[_fair(0, [v1], []), _fair(1, [v1], ["disparate_impact"]), _fair(2, ["99"], [])],
        drift=[_drift(0, v1, "ok"), _drift(1, v1, "drift"), _drift(2, "99", "drift")],
    )
    alerts = [
        {"type": "drift", "window": "w1", "model_version": v1},
        {"type": "drift", "window": "w2", "model_version": "99"},
        {"kind": "model_activated", "previous_version": "0", "serving_version": v1},
    ]
    shadow = [
        {
            "live_version": v1,
            "candidate_version": "99",
            "events": 500,
            "disagreement_rate": 0.02,
            "mean_abs_score_diff": 0.01,
            "flag_rate": {"live": 0.1, "candidate": 0.12},
            "ks_pvalue": 0.3,
        }
    ]
    assert versions_in(v) == [v1, "99"]
    pages = write_version_pages(tmp_path, reg, cfg.model.name, v, alerts, shadow)
    assert [p.name for p in pages] == [f"model-v{v1}.html", "model-v99.html"]
    mine = pages[0].read_text()
    assert mine.count("<td>w") == 2 + 1  # windows w0 and w1, and the alert of w1
    assert mine.count('<span class="breach">drift</span>') == 1
    assert "disparate_impact" in mine and "model_activated" in mine
    assert "w2" not in mine
    assert f"v{v1} (live) vs v99 (candidate)" in mine and "500" in mine
    assert "ROC AUC" in mine and "# Model card" in mine
    # each window's quality, the alerted AUC marked as a breach
    assert '<span class="breach">0.640 (0.580-0.700)</span>' in mine
    assert "0.910 (0.880-0.940)" in mine and "quality: roc_auc" in mine
    other = pages[1].read_text()
    assert "Not in this registry" in other and "w2" in other and "v99 (candidate)" in other
