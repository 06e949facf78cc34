"""The live and shadow models a scoring worker holds: every control transition on real
registered models, the shadow pair record, and the shadow report (its fairness figures
cross-checked with fairlearn)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_ratio

from models.dataset import build_dataset
from models.export import export
from models.shadow_report import summarize
from models.store.registry import Registry
from models.train import train
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.errors import ModelError
from tests import model_faults
from udfs.model_slots import ModelSlots, Scored, score_timed, shadow_record
from udfs.serving import ACTIVATE, SHADOW, UNSHADOW, ModelSwitch, load_serving_model

NAME = "cards-fraud"


@pytest.fixture(scope="module")
def setup(cfg, tmp_path_factory):
    """Two genuinely different models (other data, other estimator) and a tampered one."""
    root = tmp_path_factory.mktemp("slots")
    reg = Registry(root / "registry")
    versions = []
    for seed, estimator in ((5, "hgb"), (6, "xgboost")):
        sc = generate(ScenarioOptions(seed=seed, events=2500, days=1, bias=0.2))
        df = build_dataset(cfg, sc.events, sc.labels)
        train(cfg, df, root / str(seed), progress=lambda m: None, estimator=estimator)
        versions.append(export(root / str(seed), reg, progress=lambda m: None))
    tampered = model_faults.tampered(reg, versions[0])
    load = partial(load_serving_model, reg.root, NAME, available=cfg.model_inputs)
    rows = [dict(r) for r in df.head(400).to_dict("records")]
    return load, "1", "2", tampered, rows


def test_activate_switches_the_live_model(setup):
    load, v1, v2, _, _ = setup
    slots = ModelSlots(load(version=v1))
    ev = slots.apply(ModelSwitch(NAME, v2, ACTIVATE), lambda v: load(version=v))
    assert slots.live.version == v2 and slots.shadow is None
    assert ev == {"kind": "model_activated", "previous_version": v1, "serving_version": v2}


def test_a_shadow_scores_until_stopped_or_promoted(setup):
    load, v1, v2, _, _ = setup
    ld = lambda v: load(version=v)  # noqa: E731
    slots = ModelSlots(ld(v1))
    assert slots.apply(ModelSwitch(NAME, v2, SHADOW), ld) == {
        "kind": "shadow_started",
        "shadow_version": v2,
    }
    assert slots.live.version == v1 and slots.shadow.version == v2
    assert slots.apply(ModelSwitch(NAME, None, UNSHADOW), ld) == {
        "kind": "shadow_stopped",
        "shadow_version": v2,
    }
    assert slots.shadow is None
    slots.apply(ModelSwitch(NAME, v2, SHADOW), ld)
    ev = slots.apply(ModelSwitch(NAME, v2, ACTIVATE), ld)
    assert ev["shadow_promoted"] is True
    assert slots.live.version == v2 and slots.shadow is None


def test_a_bad_shadow_is_refused_and_nothing_changes(setup):
    load, v1, v2, tampered, _ = setup
    ld = lambda v: load(version=v)  # noqa: E731
    slots = ModelSlots(ld(v1), ld(v2))
    with pytest.raises(ModelError, match="corrupt or was replaced"):
        slots.apply(ModelSwitch(NAME, tampered, SHADOW), ld)
    with pytest.raises(ModelError, match="cannot shadow itself"):
        slots.apply(ModelSwitch(NAME, v1, SHADOW), ld)
    assert (slots.live.version, slots.shadow.version) == (v1, v2)


def test_the_shadow_record_holds_both_models_scores(setup):
    load, v1, v2, _, rows = setup
    live, cand = load(version=v1), load(version=v2)
    threshold = 0.5
    for row in rows:
        a, b = score_timed(live, row), score_timed(cand, row)
        rec = shadow_record({"event_id": row["__event_id__"]}, live, a, cand, b, threshold)
        assert rec["live_score"] == live.scorer.score_one(row)
        assert rec["candidate_score"] == cand.scorer.score_one(row)
        assert rec["live_flagged"] == int(a.score >= threshold)
        assert rec["disagree"] == int(rec["live_flagged"] != rec["candidate_flagged"])
        assert (rec["live_version"], rec["candidate_version"]) == (v1, v2)
        assert rec["live_latency_us"] >= 0 and rec["candidate_latency_us"] >= 0
    assert 0 < sum(abs(live.scorer.score_one(r) - cand.scorer.score_one(r)) > 1e-6 for r in rows), (
        "the two models must differ for this test to mean anything"
    )


def _records(n: int, seed: int, live_v="1", cand_v="2") -> list[dict]:
    rng = np.random.default_rng(seed)
    groups = rng.choice(["18-25", "26-40", "41-65", "65+"], size=n)
    live = rng.random(n)
    cand = np.clip(live + rng.normal(0, 0.1, n) + (groups == "65+") * 0.2, 0, 1)
    return [
        shadow_record(
            {"event_id": f"e{seed}-{i}", "age_band": str(g)},
            _Model(live_v),
            Scored(float(s1), int(rng.integers(50, 90))),
            _Model(cand_v),
            Scored(float(s2), int(rng.integers(80, 150))),
            0.5,
        )
        for i, (g, s1, s2) in enumerate(zip(groups, live, cand, strict=True))
    ]


class _Model:
    """What ``shadow_record`` reads of a model: its name and version."""

    def __init__(self, version: str) -> None:
        self.name, self.version = NAME, version


def test_the_shadow_report_per_pair():
    recs = _records(3000, 1)
    (s,) = summarize(recs + recs[:100], "age_band", favourable=0, min_count=30)  # 100 resent
    assert s["events"] == 3000
    lf = np.array([r["live_flagged"] for r in recs])
    cf = np.array([r["candidate_flagged"] for r in recs])
    assert s["disagreement_rate"] == pytest.approx(np.mean(lf != cf))
    assert s["newly_flagged"] == int(np.sum((lf == 0) & (cf == 1)))
    assert s["flag_rate"] == {
        "live": pytest.approx(lf.mean()),
        "candidate": pytest.approx(cf.mean()),
    }
    assert s["latency_us"]["candidate"]["p50"] > s["latency_us"]["live"]["p50"]
    assert s["ks_statistic"] > 0 and s["ks_pvalue"] < 0.05  # the candidate is shifted
    groups = np.array([r["age_band"] for r in recs])
    for role, flags in (("live", lf), ("candidate", cf)):
        assert s["fairness"][role]["disparate_impact_ratio"] == pytest.approx(
            demographic_parity_ratio(flags, (flags == 0).astype(int), sensitive_features=groups),
            abs=1e-12,
        )


def test_the_shadow_report_separates_candidates():
    out = summarize(_records(200, 2, "1", "2") + _records(300, 3, "1", "3"))
    assert [(p["candidate_version"], p["events"]) for p in out] == [("2", 200), ("3", 300)]
    assert "fairness" not in out[0]
