"""Flink tier, through the harness (``tests/flink/harness.py``): the job graph's scoring path
and its monitors, as ``flink_jobs.graph`` wires them minus Kafka, on the MiniCluster at
parallelism 1 and 2, fed from memory, every output collected.

- Scoring: every valid event scored once by the model in force, with the features of the
  offline replay and the score of the offline model on the same inputs; malformed, resent
  and late records on their outputs; control records the serving gate refuses are rejected
  on every subtask while the current model keeps serving.
- Hot swap, in stages (the harness writes the next records only once the previous stage's
  outputs are in): a shadow candidate scores exactly the events between its start and its
  promotion, and the events after the promotion are scored by it alone.
- Monitors (the monitoring job: score records and labels in): fairness per window equal to
  fairlearn on the same predictions and labels, model quality per window (overall and per
  group) equal to scikit-learn on the labelled events, drift flagged after the injected change and
  not before, malformed score and label records dead-lettered; parallelism 1 and 2 give
  the same final reports and verdicts.
"""

from __future__ import annotations

import collections
import json
from dataclasses import replace

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_ratio
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from rtml.cli.commands.data import scenario_options
from rtml.cli.scenarios.cards import generate
from tests.feature_values import same_feature
from tests.flink.harness import Stage, environment, run_at_once, run_in_stages

pytestmark = pytest.mark.flink

CHECKPOINT_MS = 1000
DRIFT_CAP = 150  # the collected records of a stage come back at each checkpoint


def job(cfg, models, parallelism, order="arrival", part="scoring", workspace=None):
    cfg = replace(
        cfg, job=replace(cfg.job, feature_order=order, checkpoint_interval_ms=CHECKPOINT_MS)
    )
    env, cfg, opts = environment(cfg, parallelism, models.registry, workspace or models.workspace)
    return env, cfg, replace(opts, part=part, model_version=models.v1)


def scoring(cfg, opts):
    from flink_jobs.graph import scoring_outputs
    from flink_jobs.stages import is_ordered, with_event_time

    def build(inputs):
        raw = inputs["events"]
        if is_ordered(cfg):  # the Kafka source's watermarks, per record's event-time field
            raw = with_event_time(raw, cfg)
        _, outputs = scoring_outputs(cfg, opts, raw, inputs["control"])
        return outputs

    return build


def card_scenario(order: str):
    """Drift injected at 36 h, biased decisions, 2% malformed records, resent events; in
    arrival order also events out of order within the allowed lateness and one too late."""
    sc = generate(
        scenario_options(
            seed=7,
            events=3000,
            days=2.0,
            drift_at_h=36.0,
            drift_size=1.5,
            bias=0.25,
            bad_fraction=0.02,
        )
    )
    events = [dict(e) for e in sc.events]
    if order == "arrival":
        events[50]["event_time"] -= 20 * 60_000
        events[120]["event_time"] -= 40 * 60_000
        events[300]["event_time"] -= 6 * 3_600_000
    raws = [json.dumps(e) for e in events]
    resent = [raws[pos] for pos in range(100, len(raws), 500)]
    for i, pos in enumerate(range(100, len(raws), 500)):
        raws.insert(pos + 3 + i, resent[i])
    for pos, raw, _ in reversed(sc.bad):
        raws.insert(pos, raw)
    return raws, events, sc, len(resent)


def offline_features(cfg, events, order):
    from udfs.features.offline import FeatureReplay

    replay = FeatureReplay.for_job(cfg)
    if order == "event-time":
        events = sorted(events, key=lambda e: (e["event_time"], e["event_id"]))
    return {e["event_id"]: replay.observe(e) for e in events}


def served_model(cfg, models, version):
    from udfs.serving import load_serving_model

    return load_serving_model(models.registry, cfg.model.name, version, cfg.model_inputs)


@pytest.fixture(scope="module")
def scored_p1(cfg, models):
    """The scoring path at parallelism 1 in arrival order: its outputs, and its input."""
    from udfs.serving import ModelSwitch

    raws, events, sc, n_resent = card_scenario("arrival")
    env, c, opts = job(cfg, models, 1)
    control = [ModelSwitch(c.model.name, models.tampered).to_json(), "{not json"]
    got = run_at_once(env, scoring(c, opts), {"events": raws, "control": control})
    return got, c, events, sc, n_resent


def check_scoring(got, c, models, events, sc, n_resent, order, parallelism):
    expected = offline_features(c, events, order)
    scores = [json.loads(s) for s in got["scores"]]
    ids = collections.Counter(s["event_id"] for s in scores)
    assert set(ids) == {k for k, v in expected.items() if v is not None}
    assert max(ids.values()) == 1, "no event scored twice"

    v1 = served_model(c, models, models.v1)
    mismatches = [
        (s["event_id"], name)
        for s in scores
        for name, want in expected[s["event_id"]].items()
        if not same_feature(want, s["inputs"][name])
    ]
    assert not mismatches, (len(mismatches), mismatches[:5])
    offline = v1.scorer.score([s["inputs"] for s in scores])
    assert np.allclose([s["score"] for s in scores], offline, atol=1e-6)
    assert all(s["model_version"] == models.v1 for s in scores)
    assert all(s["flagged"] == int(s["score"] >= c.model.threshold) for s in scores)

    dead = collections.Counter(json.loads(d)["error"] for d in got["dead-letters"])
    assert dead.pop("duplicate_event_id") == n_resent
    assert sum(dead.values()) == len(sc.bad)
    n_late = sum(1 for v in expected.values() if v is None)
    assert len(got["late-events"]) == n_late == (1 if order == "arrival" else 0)

    # each subtask refuses both control records, and keeps serving v1
    rejected = [json.loads(r) for r in got["model-events"]]
    assert len(rejected) == 2 * parallelism
    assert {r["kind"] for r in rejected} == {"model_rejected"}
    assert {r["subtask"] for r in rejected} == set(range(parallelism))
    assert all(r["serving_version"] == models.v1 for r in rejected)
    reasons = sorted(r["reason"] for r in rejected)
    assert any("corrupt or was replaced" in r for r in reasons), reasons
    assert got["shadow"] == []


def test_scoring_at_parallelism_1_in_arrival_order(scored_p1, models):
    got, c, events, sc, n_resent = scored_p1
    check_scoring(got, c, models, events, sc, n_resent, "arrival", 1)


def test_scoring_at_parallelism_2_in_event_time_order(cfg, models):
    """Event-time order is exact at any parallelism (arrival order at 2 depends on how the
    parsers' outputs interleave: the hot-swap test below runs it)."""
    from udfs.serving import ModelSwitch

    raws, events, sc, n_resent = card_scenario("event-time")
    env, c, opts = job(cfg, models, 2, order="event-time")
    control = [ModelSwitch(c.model.name, models.tampered).to_json(), "{not json"]
    got = run_at_once(env, scoring(c, opts), {"events": raws, "control": control})
    check_scoring(got, c, models, events, sc, n_resent, "event-time", 2)


def _kind(got, kind: str) -> list[dict]:
    return [r for r in map(json.loads, got["model-events"]) if r["kind"] == kind]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_hot_swap_shadow_then_promote_in_stages(cfg, models, parallelism, tmp_path):
    """A -> shadow v2 starts -> B -> v2 promoted -> C: A and B scored by v1, C by v2; B, and
    only B, scored by v2 too (its pairs on the shadow output, once each)."""
    from udfs.serving import SHADOW, ModelSwitch

    # 1,500 events over 15 minutes: at parallelism 2 the merchant stage gets them from two
    # account subtasks in an order that depends on timing, but within the allowed lateness
    # of each other, so none is late
    sc = generate(scenario_options(31, 1500, 15 / 1440, None, 0.0, 0.2, 0.0))
    raws = [json.dumps(e) for e in sc.events]
    a, b, d = raws[:500], raws[500:1000], raws[1000:]
    env, c, opts = job(cfg, models, parallelism)
    name = c.model.name

    def scored(n):
        return lambda got: len(got["scores"]) >= n

    def every_subtask(kind):
        return lambda got: len(_kind(got, kind)) >= parallelism

    stages = [
        Stage({"events": a, "control": []}, scored(len(a)), "batch A scored"),
        Stage(
            {"control": [ModelSwitch(name, models.v2, SHADOW).to_json()]},
            every_subtask("shadow_started"),
            "shadow started",
        ),
        Stage({"events": b}, scored(len(a) + len(b)), "batch B scored"),
        Stage(
            {"control": [ModelSwitch(name, models.v2).to_json()]},
            every_subtask("model_activated"),
            "v2 activated",
        ),
        Stage({"events": d}, scored(len(raws)), "batch C scored"),
    ]
    got = run_in_stages(env, scoring(c, opts), stages, tmp_path, timeout_s=120)

    scores = [json.loads(s) for s in got["scores"]]
    assert len(scores) == len(raws) == len({s["event_id"] for s in scores})
    assert got["late-events"] == [] and got["dead-letters"] == []
    batch = {json.loads(r)["event_id"]: i for i, part in enumerate((a, b, d)) for r in part}
    versions = collections.defaultdict(set)
    for s in scores:
        versions[batch[s["event_id"]]].add(s["model_version"])
    assert dict(versions) == {0: {models.v1}, 1: {models.v1}, 2: {models.v2}}

    pairs = [json.loads(p) for p in got["shadow"]]
    assert sorted(p["event_id"] for p in pairs) == sorted(k for k, i in batch.items() if i == 1)
    served = {s["event_id"]: s for s in scores}
    v2 = served_model(c, models, models.v2)
    offline = v2.scorer.score([served[p["event_id"]]["inputs"] for p in pairs])
    assert np.allclose([p["candidate_score"] for p in pairs], offline, atol=1e-6)
    assert all(p["live_score"] == served[p["event_id"]]["score"] for p in pairs)

    activated = _kind(got, "model_activated")
    assert {x["subtask"] for x in activated} == set(range(parallelism))
    assert all(x["previous_version"] == models.v1 and x["shadow_promoted"] for x in activated)


def monitoring(cfg, opts, favourable):
    from flink_jobs.graph import monitoring_job_outputs

    def build(inputs):
        return monitoring_job_outputs(cfg, opts, inputs["scores"], inputs["labels"], favourable)

    return build


def monitor(cfg, models, scored_p1, parallelism, workspace):
    from flink_jobs.graph import check_model

    got, _, _, sc, _ = scored_p1
    # a drift sample smaller than most windows: the sample (bottom-k by event id) is drawn
    cfg = replace(cfg, monitoring=replace(cfg.monitoring, drift_sample_cap=DRIFT_CAP))
    env, c, opts = job(cfg, models, parallelism, part="monitoring", workspace=str(workspace))
    labels = [json.dumps(lab) for lab in sc.labels]
    inputs = {
        "scores": got["scores"] + ['{"event_id": 1}', "not json"],
        "labels": labels + ['{"event_id": "x"}', "[]"],
    }
    return run_at_once(env, monitoring(c, opts, check_model(c, opts)), inputs), c


@pytest.fixture(scope="module")
def monitored(cfg, models, scored_p1, tmp_path_factory):
    return {
        p: monitor(cfg, models, scored_p1, p, tmp_path_factory.mktemp(f"workspace-p{p}"))
        for p in (1, 2)
    }


def _final_fairness(got) -> dict[int, dict]:
    return {
        r["window_start"]: r for r in map(json.loads, got["fairness"]) if r["status"] == "final"
    }


def _verdicts(got) -> list[tuple]:
    drift = sorted(map(json.loads, got["drift"]), key=lambda d: d["window_start"])
    return [
        (
            d["window_start"],
            d["status"],
            tuple(d.get("drifted_columns", ())),
            d["sample_ids_crc32"],  # the sampled event ids
            d["rows"],
            d["window_events"],
        )
        for d in drift
    ]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_monitors_fairness_equals_fairlearn_and_drift_after_the_change(
    monitored, scored_p1, parallelism
):
    got, c = monitored[parallelism]
    scores = [json.loads(s) for s in scored_p1[0]["scores"]]
    sc = scored_p1[3]
    assert len(got["score-dead-letters"]) == 2 and len(got["label-dead-letters"]) == 2

    final = _final_fairness(got)
    labels = {lab["event_id"] for lab in sc.labels}
    size = c.monitoring.window_ms
    by_window = collections.defaultdict(list)
    for s in scores:
        by_window[s["event_time"] - s["event_time"] % size].append(s)
    assert set(final) == set(by_window)
    for ws, rows in by_window.items():
        r = final[ws]
        assert r["predictions"] == len(rows)
        assert r["labelled"] == sum(1 for s in rows if s["event_id"] in labels)
        fav = np.array([1 - s["flagged"] for s in rows])  # favourable = not flagged
        groups = np.array([s[c.schema.sensitive_attribute] for s in rows])
        assert r["disparate_impact_ratio"] == pytest.approx(
            demographic_parity_ratio(fav, fav, sensitive_features=groups), abs=1e-12
        )

    verdicts = _verdicts(got)
    assert len(verdicts) == len(by_window)
    # v1 was exported from a short history: no calibrated test, Evidently's share decides
    evaluated = [d for d in map(json.loads, got["drift"]) if "drift_share" in d]
    assert evaluated and {d["verdict"] for d in evaluated} == {"uncalibrated"}
    start = verdicts[0][0]
    for ws, status, columns, *_ in verdicts:
        hours = (ws - start) / 3_600_000
        if hours < 24:
            assert status == "warmup"
        elif hours >= 36:
            assert status == "drift" and "amount" in columns, (hours, status, columns)
    # one alert per drifted window, and one per fairness breach as its report first shows it
    alerts = collections.defaultdict(list)
    for a in map(json.loads, got["alerts"]):
        alerts[a["type"]].append(a["window_start"])
    assert sorted(alerts["drift"]) == [ws for ws, status, *_ in verdicts if status == "drift"]
    breached = {ws for ws, r in final.items() if r["alerts"]}
    assert breached <= set(alerts["fairness"])


@pytest.mark.parametrize("parallelism", [1, 2])
def test_monitors_quality_per_window_equals_sklearn(monitored, scored_p1, parallelism):
    got, c = monitored[parallelism]
    scores = [json.loads(s) for s in scored_p1[0]["scores"]]
    label = {lab["event_id"]: lab[c.labels.label] for lab in scored_p1[3].labels}
    size = c.monitoring.window_ms
    by_window = collections.defaultdict(list)
    for s in scores:
        if s["event_id"] in label:
            by_window[s["event_time"] - s["event_time"] % size].append(s)
    checked = 0
    for ws, r in _final_fairness(got).items():
        q = r["quality"]
        rows = by_window.get(ws, [])
        assert q["rows"] == q["labelled_seen"] == len(rows) and not q["sampled"]
        group = np.array([s[c.schema.sensitive_attribute] for s in rows])
        for name, got_q in [(None, q)] + list(q["groups"].items()):
            sel = np.ones(len(rows), bool) if name is None else group == name
            y = np.array([label[s["event_id"]] == c.labels.positive for s in rows])[sel]
            sc = np.array([s["score"] for s in rows])[sel]
            flagged = np.array([s["flagged"] for s in rows])[sel]
            assert got_q["rows"] == sel.sum()
            if y.any() and flagged.any():
                assert got_q["precision"] == pytest.approx(precision_score(y, flagged))
                assert got_q["recall"] == pytest.approx(recall_score(y, flagged))
            if 0 < y.sum() < len(y):
                assert got_q["roc_auc"] == pytest.approx(roc_auc_score(y, sc), abs=1e-12)
                assert got_q["average_precision"] == pytest.approx(
                    average_precision_score(y, sc), abs=1e-12
                )
                checked += 1
        assert q["held_out_roc_auc"] is not None  # from the registry: the alert's reference
    assert checked >= 5


def test_monitors_give_the_same_reports_at_parallelism_1_and_2(monitored):
    one, two = monitored[1][0], monitored[2][0]
    assert _final_fairness(one) == _final_fairness(two)
    assert _verdicts(one) == _verdicts(two)
    sampled = [v for v in _verdicts(one) if v[5] > DRIFT_CAP]
    assert len(sampled) >= 3 and all(v[4] == DRIFT_CAP for v in sampled)


def _calibration_for(good) -> dict:
    """A calibrated drift test for the version's columns, with stated laws (every column's log
    distance ~ N(-2.3, 0.3), an exponential tail over 1.0): the operator must apply it as is."""
    from udfs.drift_calibration import Band, ColumnLaw, DriftCalibration, tail_isf

    inputs = good.metadata.inputs
    nums = tuple(i.name for i in inputs if i.type != "string") + ("score",)
    cats = tuple(i.name for i in inputs if i.type == "string")
    laws = {c: ColumnLaw(-2.3, 0.3) for c in nums + cats}
    tail = (1.0, 0.0, 0.5)
    bands = tuple(Band(n, 1000, laws, tail, tail_isf(0.01, tail)) for n in (100, DRIFT_CAP))
    return DriftCalibration(0.01, 6 * 3_600_000, DRIFT_CAP, nums, cats, bands).to_dict()


def test_a_version_with_a_calibrated_test_gets_its_verdict_at_parallelism_2(
    cfg, models, scored_p1, tmp_path
):
    """The same model republished with a calibrated drift test in its metadata, the scores
    attributed to it: every evaluated window's drift event carries that test's statistic,
    threshold and p-value, equal to the test applied offline to the window's bottom-k sample
    of the scored events, and the window's status follows the calibrated verdict."""
    import pandas as pd

    from flink_jobs.graph import check_model
    from models.store.registry import Registry
    from tests import model_faults
    from udfs.drift import DriftColumns
    from udfs.drift_sample import bottom_k
    from udfs.drift_verdict import CalibratedDrift
    from udfs.sampling import stable_key
    from udfs.windows import window_start

    reg = Registry(models.registry)
    good = reg.resolve(cfg.model.name, models.v1)
    stored = _calibration_for(good)
    version = model_faults.with_metadata(reg, good, drift_calibration=stored)
    c = replace(cfg, monitoring=replace(cfg.monitoring, drift_sample_cap=DRIFT_CAP))
    env, c, opts = job(c, models, 2, part="monitoring", workspace=str(tmp_path))
    opts = replace(opts, model_version=version)
    size = c.monitoring.window_ms
    # three of the eight windows (each window's drift report costs seconds): the first (in
    # warm-up), the last before the change at 36 h and the first after it
    all_scores = [json.loads(s) for s in scored_p1[0]["scores"]]
    first = window_start(min(s["event_time"] for s in all_scores), size)
    kept_windows = {first + k * size for k in (0, 5, 6)}
    scores = [
        s | {"model_version": version}
        for s in all_scores
        if window_start(s["event_time"], size) in kept_windows
    ]
    kept_ids = {s["event_id"] for s in scores}
    inputs = {
        "scores": [json.dumps(s) for s in scores],
        "labels": [json.dumps(lab) for lab in scored_p1[3].labels if lab["event_id"] in kept_ids],
    }
    got = run_at_once(env, monitoring(c, opts, check_model(c, opts)), inputs)

    test = CalibratedDrift.of(
        stored,
        pd.read_parquet(good.reference_path),
        DriftColumns(tuple(stored["numerical"]), tuple(stored["categorical"])),
    )
    windows = collections.defaultdict(list)
    for s in scores:
        row = dict(s["inputs"]) | {"score": s["score"]}
        windows[window_start(s["event_time"], size)].append(
            (stable_key(s["event_id"]), s["event_id"], row)
        )
    drift = [json.loads(d) for d in got["drift"]]
    evaluated = [d for d in drift if d["status"] in ("ok", "drift", "warmup")]
    assert sorted(d["window_start"] for d in evaluated) == sorted(kept_windows)
    for d in evaluated:
        want = test.verdict([r for *_, r in bottom_k(windows[d["window_start"]], DRIFT_CAP)])
        assert d["verdict"] == "calibrated" and d["rows_compared"] == want["rows_compared"]
        assert d["statistic"] == pytest.approx(want["statistic"], abs=1e-9)
        assert (d["threshold"], d["false_alarm_rate"]) == (want["threshold"], 0.01)
        assert d["p_value"] == pytest.approx(want["p_value"], abs=1e-12)
        assert d["calibrated_drifted_columns"] == want["calibrated_drifted_columns"]
        if d["status"] != "warmup":
            assert d["dataset_drift"] is want["dataset_drift"]
            assert d["status"] == ("drift" if want["dataset_drift"] else "ok")
    assert {d["status"] for d in evaluated} >= {"warmup", "drift"}
    alerts = [a for a in map(json.loads, got["alerts"]) if a["type"] == "drift"]
    assert alerts and all(a["verdict"] == "calibrated" for a in alerts)
