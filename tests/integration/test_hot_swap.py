"""Hot-swap on a running job (session cluster, exactly-once): faulty models offered through
the control topic are rejected while the current model keeps serving; a candidate shadows
the live model (every event scored by both, the pair on the shadow topic, once each) and is
then promoted, switched to between two events, with no event lost or scored twice; after a
stop and restore the job serves the version its broadcast state holds, not the one it was
submitted with."""

from __future__ import annotations

import collections
import json
from dataclasses import replace
from pathlib import Path

import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import ensure_topics, produce, read_topic
from models.store.registry import Registry
from rtml.cli.commands.data import export_model, scenario_options, train_model
from rtml.cli.commands.job import JobTarget, jobs_stop, submit
from rtml.cli.commands.models import models_activate, models_shadow, shadow_report
from rtml.cli.scenarios.cards import generate
from rtml.core import paths
from rtml.core.errors import ModelError
from tests import model_faults
from tests.conftest import DEMO_CONFIG
from tests.integration.waiting import job_detail, wait_for
from udfs.serving import ModelSwitch, load_serving_model

pytestmark = pytest.mark.integration

PREFIX = "hs."
REJECTED_BECAUSE = {
    "tampered": "corrupt or was replaced",
    "truncated": "ONNX Runtime cannot load",
    "renamed_input": "does not produce: ['amount_usd']",
    "wrong_input_type": "fails on a probe row",
}


@pytest.fixture
def registry(model):
    """The session's registry, with its current version put back afterwards."""
    reg = Registry(paths.registry_dir())
    current = reg.current_version(model.metadata.name)
    yield reg
    reg.set_current(model.metadata.name, current)


def _batches(n: int) -> list[list[str]]:
    sc = generate(
        scenario_options(
            seed=31,
            events=4000,
            days=1.0,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.2,
            bad_fraction=0,
        )
    )
    events = [json.dumps(e) for e in sc.events]
    size = len(events) // n
    return [events[i * size : (i + 1) * size] for i in range(n)]


def _scores(c) -> list[dict]:
    return read_topic(c, c.kafka.topics.scores)


def _alerts(c, kind: str) -> list[dict]:
    return [a for a in read_topic(c, c.kafka.topics.alerts) if a.get("kind") == kind]


def test_hot_swap_rejects_faulty_models_and_switches_with_nothing_lost_or_doubled(
    cfg, broker, model, cluster, registry
):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(PREFIX)
    name, v1 = model.metadata.name, model.metadata.version
    faults = model_faults.all_faults(registry, model, "amount")
    # the candidate: a different model (LightGBM, other data), so the shadow pair means something
    opts = scenario_options(2, 6000, 1.5, None, 0.0, 0.25, 0.0)
    train_model(c, opts, None, None, estimator="lightgbm")
    v2 = export_model(c, make_current=False).metadata.version
    ensure_topics(c)
    t = c.kafka.topics
    a, b, d, e = _batches(4)

    produce(c, t.events, a)
    target = JobTarget(
        Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix=PREFIX, part="scoring"
    )
    rest = FlinkRest(cluster.address)
    job = submit(c, replace(target, model_version=v1), cluster.address, detached=True)
    rest.wait_for_state(job, {"RUNNING"}, 120)
    wait_for(
        lambda: len(_scores(c)) >= len(a),
        240,
        f"{len(a)} scores from batch A",
        detail=lambda: job_detail(rest, job),
    )

    # the faulty versions, offered straight to the running job (the CLI would refuse them)
    for version in faults.values():
        with pytest.raises(ModelError):
            models_activate(c, version)
    produce(c, t.control, [ModelSwitch(name, v).to_json() for v in faults.values()])
    rejected = wait_for(
        lambda: (r := _alerts(c, "model_rejected")) and len(r) >= len(faults) and r,
        120,
        "the job's verdicts on the faulty models",
    )
    # the good candidate shadows v1 while batch B is scored
    models_shadow(c, v2)
    wait_for(lambda: _alerts(c, "shadow_started"), 120, "the shadow of v2 starting")
    produce(c, t.events, b)
    wait_for(
        lambda: len(_scores(c)) >= len(a) + len(b),
        240,
        "the scores of batch B",
        detail=lambda: job_detail(rest, job),
    )

    # promoted, through the CLI: checked, made current, sent to the job (the shadow stops)
    models_activate(c, v2)
    activated = wait_for(lambda: _alerts(c, "model_activated"), 120, "the switch to v2")
    produce(c, t.events, d)
    wait_for(
        lambda: len(_scores(c)) >= len(a) + len(b) + len(d),
        240,
        "the scores of batch D",
        detail=lambda: job_detail(rest, job),
    )
    assert rest.restarts(job) == 0

    # stop, then restore with the job submitted for v1: the broadcast state says v2
    savepoint = jobs_stop(cluster.address, job, None)
    produce(c, t.events, e)
    resumed = submit(
        c, replace(target, model_version=v1), cluster.address, from_savepoint=savepoint
    )
    rest.wait_for_state(resumed, {"RUNNING"}, 120)
    wait_for(
        lambda: len(_scores(c)) >= len(a) + len(b) + len(d) + len(e),
        240,
        "batch E",
        detail=lambda: job_detail(rest, resumed),
    )
    jobs_stop(cluster.address, resumed, None)

    scores = _scores(c)
    by_id = collections.Counter(s["event_id"] for s in scores)
    sent = {json.loads(x)["event_id"]: i for i, batch in enumerate((a, b, d, e)) for x in batch}
    assert set(by_id) == set(sent), "every event scored"
    assert max(by_id.values()) == 1, "no event scored twice"
    versions = collections.defaultdict(set)
    for s in scores:
        versions[sent[s["event_id"]]].add(s["model_version"])
    assert dict(versions) == {0: {v1}, 1: {v1}, 2: {v2}, 3: {v2}}

    assert sorted(r["version"] for r in rejected) == sorted(faults.values())
    for fault, version in faults.items():
        (r,) = [r for r in rejected if r["version"] == version]
        assert REJECTED_BECAUSE[fault] in r["reason"], (fault, r["reason"])
        assert r["serving_version"] == v1
    assert [(x["previous_version"], x["serving_version"]) for x in activated] == [(v1, v2)]
    assert activated[0]["shadow_promoted"] is True
    assert registry.current_version(name) == v2
    _check_shadow(c, registry, scores, [json.loads(x)["event_id"] for x in b], v1, v2)


def _check_shadow(c, registry, scores, batch_b, v1, v2):
    """Batch B, and only B, was scored by both: once each, the live score equal to the
    served one, the candidate's equal to v2 scoring the same inputs offline."""
    shadow = read_topic(c, c.kafka.topics.shadow)
    counts = collections.Counter(r["event_id"] for r in shadow)
    assert set(counts) == set(batch_b) and max(counts.values()) == 1
    served = {s["event_id"]: s for s in scores}
    v2_offline = load_serving_model(registry.root, c.model.name, v2, c.model_inputs)
    for r in shadow:
        s = served[r["event_id"]]
        assert (r["live_version"], r["candidate_version"]) == (v1, v2)
        assert r["live_score"] == s["score"] and r["live_flagged"] == s["flagged"]
        assert r["candidate_score"] == pytest.approx(
            v2_offline.scorer.score_one(s["inputs"]), abs=1e-6
        )
    (pair,) = shadow_report(c)
    assert (pair["live_version"], pair["candidate_version"]) == (v1, v2)
    assert pair["events"] == len(batch_b)
    assert pair["mean_abs_score_diff"] > 0
    assert set(pair["fairness"]) == {"live", "candidate"}
