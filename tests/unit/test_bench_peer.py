"""The bench's peer (d), record by record without Kafka: each input gets the one output the
Flink scoring job would write. Valid events get the job's score record (features equal to the
offline replay, the registered model's score); malformed records, resent ids and late events
go to the dead letters and the late topic with the job's reasons."""

from __future__ import annotations

import json

import pytest

from models.dataset import build_dataset
from models.export import export
from models.store.registry import Registry
from models.train import train
from rtml.cli.bench.peer import PeerScorer, rejection, to_json
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from udfs.features.offline import FeatureReplay
from udfs.flink.records import to_json_nan_safe
from udfs.serving import load_serving_model
from udfs.validation import parse_event, parse_score

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def model(cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("peer")
    reg = Registry(root / "registry")
    sc = generate(ScenarioOptions(seed=5, events=2500, days=1, bias=0.2))
    train(cfg, build_dataset(cfg, sc.events, sc.labels), root / "m", progress=lambda m: None)
    export(root / "m", reg, progress=lambda m: None)
    return load_serving_model(reg.root, cfg.model.name, "current", cfg.model_inputs)


@pytest.fixture(scope="module")
def scenario():
    return generate(ScenarioOptions(seed=9, events=400, days=0.1, bad_fraction=0.05))


def _outputs(scorer: PeerScorer, raws) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for raw in raws:
        topic, text = scorer.handle(raw.encode() if isinstance(raw, str) else raw)
        out.setdefault(topic, []).append(json.loads(text))
    return out


def test_each_valid_event_gets_the_flink_jobs_score_record(cfg, model, scenario):
    scorer = PeerScorer(cfg, model)
    out = _outputs(scorer, scenario.raw_events())
    scores = out[cfg.kafka.topics.scores]
    assert [s["event_id"] for s in scores] == [e["event_id"] for e in scenario.events]
    # ScoreFunction.process_element's record: the pass-through fields, then the score
    s = cfg.schema
    fields = {s.event_id, s.event_time, *(e.key for e in s.entities), s.sensitive_attribute}
    fields |= {"score", "flagged", "model", "model_version", "inputs"}
    replay = FeatureReplay.for_job(cfg)
    for rec, raw in zip(scores, scenario.events, strict=True):
        assert set(rec) == fields
        event = parse_event(json.dumps(raw), s)
        event.update(replay.observe(event))
        # the features exactly (NaN written as null, as the job writes it)
        assert rec["inputs"] == json.loads(to_json_nan_safe({k: event[k] for k in model.inputs}))
        assert rec["score"] == pytest.approx(model.scorer.score_one(event), abs=1e-7)
        assert rec["flagged"] == int(rec["score"] >= cfg.model.threshold)
        assert (rec["model"], rec["model_version"]) == (model.name, model.version)
        parse_score(json.dumps(rec), s)  # the monitoring job reads it as the job's own
    assert scorer.counts.scored == len(scenario.events)


def test_malformed_records_are_dead_lettered_with_their_reason(cfg, model, scenario):
    scorer = PeerScorer(cfg, model)
    dead = _outputs(scorer, scenario.raw_events())[cfg.kafka.topics.dead_letter]
    assert len(dead) == len(scenario.bad) == scorer.counts.dead_lettered
    assert {d["source"] for d in dead} == {cfg.kafka.topics.events}
    assert all(d["error"] and d["reason"] and "raw" in d for d in dead)


def test_a_resent_event_is_dead_lettered_as_a_duplicate_and_not_scored(cfg, model, scenario):
    scorer = PeerScorer(cfg, model)
    first = json.dumps(scenario.events[0])
    out = _outputs(scorer, [first, json.dumps(scenario.events[1]), first])
    assert len(out[cfg.kafka.topics.scores]) == 2
    (dup,) = out[cfg.kafka.topics.dead_letter]
    assert dup["error"] == "duplicate_event_id"
    assert dup["record_id"] == scenario.events[0]["event_id"]
    assert scorer.counts.duplicates == 1


def _event(base: dict, event_id: str, account: str, merchant: str, ts: int) -> str:
    return json.dumps(
        {
            **base,
            "event_id": event_id,
            "account_id": account,
            "merchant_id": merchant,
            "event_time": ts,
        }
    )


def test_late_events_go_to_the_late_topic_per_entity(cfg, model, scenario):
    scorer = PeerScorer(cfg, model)
    base, t0 = scenario.events[0], scenario.events[0]["event_time"]
    out = _outputs(
        scorer,
        [
            _event(base, "e1", "A1", "M1", t0 + 3 * HOUR_MS),
            _event(base, "e2", "A1", "M2", t0),  # 3 h behind A1's newest: late for accounts
            _event(base, "e3", "A2", "M1", t0),  # A2 is new, but M1 saw t0 + 3 h
        ],
    )
    late = out[cfg.kafka.topics.late]
    assert [(x["entity"], x["key"], x["event"]["event_id"]) for x in late] == [
        ("account", "A1", "e2"),
        ("merchant", "M1", "e3"),
    ]
    assert "beyond the allowed lateness of 3600s" in late[0]["reason"]
    assert len(out[cfg.kafka.topics.scores]) == 1 and scorer.counts.late == 2
    # as in the job, the account stage counted e3 before the merchant stage found it late
    assert scorer.replay.state[("account", "A2")].newest_ts == t0


def test_rejection_reads_ahead_without_changing_the_state(cfg, scenario):
    replay = FeatureReplay.for_job(cfg)
    e = parse_event(json.dumps(scenario.events[0]), cfg.schema)
    assert rejection(replay, e) is None
    replay.observe(e)
    before = {k: v.snapshot() for k, v in replay.state.items()}
    why = rejection(replay, e)
    assert (why.kind, why.entity.name) == ("duplicate", "account")
    assert {k: v.snapshot() for k, v in replay.state.items()} == before
    assert replay.observe(e) is None


def test_the_peer_writes_json_as_the_job_does():
    rec = {"a": float("nan"), "b": [1.5, float("inf")], "c": {"d": "x", "e": None}, "f": 3}
    assert to_json(rec) == to_json_nan_safe(rec)
