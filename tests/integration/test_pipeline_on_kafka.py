"""The whole pipeline on the real broker: produce, run the job, read every output topic.

Asserts on counts (one score per valid event, every malformed record dead-lettered with its
reason) and on values (features equal the offline replay, fairness equals fairlearn on the
same predictions and labels, drift flagged after the injected change, reports saved); then
the feedback loop trains the next version from the topics the job wrote.
"""

from __future__ import annotations

import collections
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_ratio

from deploy.kafka_client import read_topic
from rtml.cli.commands.data import export_model, produce_scenario, scenario_options, train_from_log
from rtml.cli.commands.job import JobTarget, run_embedded
from rtml.core import paths
from tests.conftest import DEMO_CONFIG
from udfs.features.offline import FeatureReplay
from udfs.serving import load_serving_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(cfg, broker, model):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("it1.")
    opts = scenario_options(
        seed=7, events=6000, days=2.0, drift_at_h=36.0, drift_size=1.5, bias=0.25, bad_fraction=0.02
    )
    produced = produce_scenario(c, opts)
    # the demo's way: scoring and monitoring as two jobs, the monitors reading the scores topic
    target = JobTarget(
        Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix="it1.", bounded=True
    )
    run_embedded(c, replace(target, part="scoring"))
    run_embedded(c, replace(target, part="monitoring"))
    t = c.kafka.topics
    return {
        "cfg": c,
        "produced": produced,
        "scores": read_topic(c, t.scores),
        "dead": read_topic(c, t.dead_letter),
        "late": read_topic(c, t.late),
        "fairness": read_topic(c, t.fairness),
        "drift": read_topic(c, t.drift),
        "model": model,
    }


def test_exactly_one_score_per_valid_event(run):
    ids = [s["event_id"] for s in run["scores"]]
    assert len(ids) == run["produced"].valid == len(set(ids))
    assert {e["event_id"] for e in run["produced"].scenario.events} == set(ids)
    assert all(
        s["model_version"] == run["model"].metadata.version and 0.0 <= s["score"] <= 1.0
        for s in run["scores"]
    )
    assert all(s["flagged"] == int(s["score"] >= run["cfg"].model.threshold) for s in run["scores"])


def test_every_malformed_record_is_dead_lettered_with_its_reason(run):
    produced = run["produced"]
    assert len(run["dead"]) == produced.bad
    expected = collections.Counter(kind for _, _, kind in produced.scenario.bad)
    got = collections.Counter(d["error"] for d in run["dead"])
    # each generated defect maps to one validation error code
    kind_to_code = {
        "invalid_json": "invalid_json",
        "nan_amount": "invalid_json",
        "missing_field": "missing_field",
        "wrong_type": "wrong_type",
        "negative_amount": "out_of_range",
        "unknown_category": "unknown_category",
        "future_timestamp": "timestamp_in_future",
        "not_an_object": "not_an_object",
    }
    want = collections.Counter()
    for kind, n in expected.items():
        want[kind_to_code[kind]] += n
    assert got == want
    assert all(d["reason"] and d["raw"] for d in run["dead"])
    assert run["late"] == []


def test_scored_features_equal_the_offline_replay(run):
    cfg = run["cfg"]
    replay = FeatureReplay.for_job(cfg)
    expected = {e["event_id"]: replay.observe(e) for e in run["produced"].scenario.events}
    for s in run["scores"]:
        want = expected[s["event_id"]]
        for name in cfg.features.names:
            have = s["inputs"][name]
            assert (have is None and math.isnan(want[name])) or have == want[name], (
                s["event_id"],
                name,
                have,
                want[name],
            )


def test_fairness_windows_equal_fairlearn_on_the_same_data(run):
    final = {r["window_start"]: r for r in run["fairness"] if r["status"] == "final"}
    assert len(final) == 8  # 2 days of 6h windows
    labels = {lab["event_id"]: lab["is_fraud"] for lab in run["produced"].scenario.labels}
    size = run["cfg"].monitoring.window_ms
    by_window = collections.defaultdict(list)
    for s in run["scores"]:
        by_window[s["event_time"] - s["event_time"] % size].append(s)
    for ws, rows in by_window.items():
        r = final[ws]
        assert r["predictions"] == len(rows)
        assert r["labelled"] == sum(1 for s in rows if s["event_id"] in labels)
        fav = np.array([1 - s["flagged"] for s in rows])  # favourable = not flagged
        groups = np.array([s["age_band"] for s in rows])
        assert r["disparate_impact_ratio"] == pytest.approx(
            demographic_parity_ratio(fav, fav, sensitive_features=groups), abs=1e-12
        )
    # the injected bias shows: a breach with confidence, or at least below the threshold
    assert any("disparate_impact" in r["alerts"] + r["watch"] for r in final.values())
    assert all(
        r["disparate_impact_ci95"][0]
        <= r["disparate_impact_ratio"]
        <= r["disparate_impact_ci95"][1]
        for r in final.values()
    )


def test_drift_flagged_after_the_injected_change_and_reports_saved(run):
    drift = sorted(run["drift"], key=lambda d: d["window_start"])
    assert len(drift) == 8
    start = drift[0]["window_start"]
    for d in drift:
        hours = (d["window_start"] - start) / 3_600_000
        if hours < 24:
            assert d["status"] == "warmup"
        elif hours >= 36:
            assert d["status"] == "drift" and "amount" in d["drifted_columns"], d
    ws = paths.workspace_dir()
    snapshots = list(ws.rglob("snapshots/*.json"))
    assert len(snapshots) >= 8, list(ws.rglob("*"))[:20]


def test_reports_gate_exits_with_the_breach_code_on_drift_and_not_after_it(run, capsys):
    """`rtml reports --fail-on drift` on this run's topics: its drifted windows give the
    breach code; ``--since`` after the last of them gives 0."""
    from rtml.cli import main
    from rtml.cli.commands.review import BREACH_EXIT

    c = run["cfg"]
    args = ["reports", "--config", str(DEMO_CONFIG), "--bootstrap", c.kafka.bootstrap_servers]
    args += ["--topic-prefix", "it1.", "--fail-on", "drift"]
    drifted = [d for d in run["drift"] if d["status"] == "drift"]
    assert drifted
    assert main(args) == BREACH_EXIT
    out = capsys.readouterr().out
    assert f"gate (drift): {len(drifted)} window(s) breached" in out
    after = max(d["window_start"] for d in drifted) + 1
    assert main([*args, "--since", str(after)]) == 0
    assert "gate (drift): no breach in scope" in capsys.readouterr().out


def test_reports_export_html_and_fairness_plot(run, tmp_path):
    from rtml.cli.commands.report_export import export
    from rtml.cli.commands.review import collect

    index = export(collect(run["cfg"]), tmp_path, run["cfg"])
    html_reports = list(tmp_path.glob("drift-*.html"))
    assert len(html_reports) == 8 and all(p.stat().st_size > 100_000 for p in html_reports)
    assert (tmp_path / "fairness.html").stat().st_size > 100_000
    assert index.read_text().count("<tr>") == 9  # header + 8 windows
    # the reviewer's page of the one version that scored: every window, its card and figures
    version = run["model"].metadata.version
    page = (tmp_path / f"model-v{version}.html").read_text()
    assert f"model-v{version}.html" in index.read_text()
    assert page.count("<tr>") >= 9 and "Model card" in page and "ROC AUC" in page
    drifted = [d for d in run["drift"] if d["status"] == "drift"]
    assert page.count('<span class="breach">drift</span>') == len(drifted) > 0


def test_the_feedback_loop_trains_the_next_version_from_the_job_s_log(run):
    """`rtml train --from-log` on the real topics: the scores the job logged joined with the
    labels, all of them now and only the known ones at an earlier cut-off; exported, the next
    version passes the serving gate and records where its data came from."""
    cfg = run["cfg"]
    labels = run["produced"].scenario.labels
    scored = {s["event_id"]: s for s in run["scores"]}
    train_from_log(cfg)
    art = paths.artifacts_dir() / cfg.model.name
    now = pd.read_parquet(art / "training_set.parquet")
    assert set(now["__event_id__"]) == {x["event_id"] for x in labels} & set(scored)
    for row in now.head(500).to_dict("records"):
        logged = scored[row["__event_id__"]]["inputs"]
        for name, v in logged.items():
            assert (v is None and pd.isna(row[name])) or row[name] == pytest.approx(v), name

    as_of = sorted(x["label_time"] for x in labels)[len(labels) // 2]
    train_from_log(cfg, as_of=str(as_of), reweigh=True)
    past = pd.read_parquet(art / "training_set.parquet")
    assert (past["__label_time__"] <= as_of).all() and (past["__event_time__"] <= as_of).all()
    assert set(past["__event_id__"]) == {
        x["event_id"] for x in labels if x["label_time"] <= as_of
    } & {k for k, s in scored.items() if s["event_time"] <= as_of}

    mv = export_model(cfg, make_current=False)
    source = mv.metadata.training["source"]
    assert source["kind"] == "feedback-log" and source["as_of"] == as_of
    assert source["stats"]["rows"] == len(past)
    assert mv.metadata.training["mitigation"]["reweighing"]
    load_serving_model(paths.registry_dir(), cfg.model.name, mv.metadata.version, cfg.model_inputs)
    card = (mv.path / "model_card.md").read_text()
    assert "scored features and the labels known at" in card and "reweighing" in card
