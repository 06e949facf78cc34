"""`rtml backfill` on the real broker and session cluster: a history file (its label in each
event, malformed records mixed in, later events beyond ``--until``) goes through the job's
feature stages without a score; the scoring job submitted from the savepoint it leaves
scores the live events with the features of the offline replay over the whole history, not
those of cold state."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from deploy.kafka_client import produce, read_topic
from rtml.cli.commands.data import scenario_options
from rtml.cli.commands.job import JobTarget, submit
from rtml.cli.scenarios.cards import generate
from tests.conftest import DEMO_CONFIG
from tests.feature_values import same_feature
from udfs.features.offline import FeatureReplay

pytestmark = pytest.mark.integration

PREFIX = "bf."


def _features(cfg, events) -> dict[str, dict[str, float]]:
    replay = FeatureReplay.for_job(cfg)
    return {e["event_id"]: replay.observe(e) for e in events}


def test_live_scoring_from_a_backfill_savepoint_starts_on_warm_state(
    cfg, broker, model, cluster, tmp_path, capsys
):
    from rtml.cli import main

    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(PREFIX)
    sc = generate(scenario_options(41, 3000, 1.0, None, 0.0, 0.2, 0.02))
    cut = 2400
    until = sc.events[cut - 1]["event_time"]
    history = [e for e in sc.events if e["event_time"] <= until]
    live = [e for e in sc.events if e["event_time"] > until]
    assert len(history) >= cut and live
    labels = {lab["event_id"]: lab["is_fraud"] for lab in sc.labels}

    # the whole file: history, then the later events --until leaves out; labels inside
    path = tmp_path / "history.jsonl"
    bad = [(pos, raw, kind) for pos, raw, kind in sc.bad if pos < cut]
    lines = [json.dumps({**e, "is_fraud": labels.get(e["event_id"], 0)}) for e in sc.events]
    for pos, raw, _ in reversed(bad):
        lines.insert(pos, raw)
    path.write_text("\n".join(lines) + "\n")

    args = ["backfill", "--config", str(DEMO_CONFIG), "--bootstrap", broker.bootstrap]
    args += ["--topic-prefix", PREFIX, "--jobmanager", cluster.address, "--history", str(path)]
    assert main([*args, "--until", str(until), "--label-field", "is_fraud"]) == 0
    out = capsys.readouterr().out
    # a malformed record is backfilled (and dead-lettered) unless its time is after --until
    n_bad = sum(1 for _, _, kind in bad if kind != "future_timestamp")
    assert f"backfilled {len(history) + n_bad} records: {n_bad} dead-lettered, 0 resent" in out
    savepoint = next(ln.split()[-1] for ln in out.splitlines() if "savepoint:" in ln)
    resume = next(ln for ln in out.splitlines() if "rtml submit --part scoring" in ln)
    assert f"--from-savepoint {savepoint} --allow-non-restored-state" in resume
    t = c.kafka.topics
    assert read_topic(c, t.scores) == [] and read_topic(c, t.dead_letter) == []
    assert not [x for x in broker_topics(c) if ".backfill-" in x], "the history topic is deleted"

    produce(c, t.events, [json.dumps(e) for e in live])
    target = JobTarget(
        Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix=PREFIX, part="scoring"
    )
    submit(
        c,
        replace(target, bounded=True),
        cluster.address,
        detached=False,
        from_savepoint=savepoint,
        allow_non_restored_state=True,
    )
    scores = read_topic(c, t.scores)
    assert sorted(s["event_id"] for s in scores) == sorted(e["event_id"] for e in live)

    warm = _features(c, history + live)
    cold = _features(c, live)
    mismatches = [
        (s["event_id"], name)
        for s in scores
        for name, want in warm[s["event_id"]].items()
        if not same_feature(want, s["inputs"][name])
    ]
    assert not mismatches, (len(mismatches), mismatches[:5])
    first = min(live, key=lambda e: (e["event_time"], e["event_id"]))["event_id"]
    served = {s["event_id"]: s["inputs"] for s in scores}
    assert all(same_feature(warm[first][n], served[first][n]) for n in c.features.names)
    # not vacuous: cold state would have given many of these events other features
    differ = sum(
        1
        for e in live
        if any(
            not same_feature(cold[e["event_id"]][n], warm[e["event_id"]][n])
            for n in c.features.names
        )
    )
    assert differ > len(live) // 2, (differ, len(live))


def broker_topics(cfg) -> set[str]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cfg.kafka.bootstrap_servers)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()
