"""The bench's peer (d) on the real broker: bounded over a small scenario it scores every
valid event once, in the Flink job's score format with the offline replay's features, dead-
letters every malformed record and commits its offsets; unbounded under a paced load, the
live reader times every event it scores."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from deploy.kafka_client import committed_offsets, end_offsets, read_topic
from rtml.cli.bench import peer
from rtml.cli.bench.runs import PeerJob, paced_run
from rtml.cli.commands.data import produce_scenario, scenario_options
from rtml.cli.scenarios.cards import generate
from tests.conftest import DEMO_CONFIG
from udfs.features.offline import FeatureReplay
from udfs.validation import parse_event

pytestmark = pytest.mark.integration


def _options(seed: int, events: int):
    return scenario_options(
        seed=seed,
        events=events,
        days=events / 6000,
        drift_at_h=None,
        drift_size=0.0,
        bias=0.25,
        bad_fraction=0.02,
    )


def test_the_peer_scores_every_valid_event_once_as_the_job_would(cfg, broker, model):
    prefix = "peer-bounded."
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(prefix)
    produced = produce_scenario(c, _options(seed=41, events=600))
    stats = PeerJob(c, DEMO_CONFIG, prefix).run_bounded(timeout_s=300)
    t = c.kafka.topics
    scores = read_topic(c, t.scores)
    events = produced.scenario.events
    assert [s["event_id"] for s in scores] == [e["event_id"] for e in events]
    s = c.schema
    fields = {s.event_id, s.event_time, *(e.key for e in s.entities), s.sensitive_attribute}
    fields |= {"score", "flagged", "model", "model_version", "inputs"}
    replay = FeatureReplay.for_job(c)
    for rec, raw in zip(scores, events, strict=True):
        assert set(rec) == fields
        ev = parse_event(json.dumps(raw), s)
        ev.update(replay.observe(ev))
        for k in model.metadata.input_names:
            v = ev[k]
            assert rec["inputs"][k] == (None if v != v else v)  # NaN is written as null
        assert rec["model_version"] == model.metadata.version
        assert rec["flagged"] == int(rec["score"] >= c.model.threshold)
    assert len(read_topic(c, t.dead_letter)) == produced.bad
    assert (stats["scored"], stats["dead_lettered"]) == (produced.valid, produced.bad)
    # at-least-once: the peer committed what it consumed, in its own consumer group
    grouped = replace(c, kafka=replace(c.kafka, group_id=c.kafka.group_id + peer.GROUP_SUFFIX))
    assert committed_offsets(grouped, [t.events]) == end_offsets(c, [t.events])


def test_a_live_reader_times_every_event_the_peer_scores_under_load(cfg, broker, model):
    prefix = "peer-paced."
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(prefix)
    sc = generate(_options(seed=42, events=400))
    records = list(sc.raw_events())
    valid = {e["event_id"] for e in sc.events}
    run = paced_run(PeerJob(c, DEMO_CONFIG, prefix), c, records, valid, len(valid), 200.0, True)
    assert (run.polled.n, run.polled.missing) == (len(valid), 0)
    assert 0 <= run.polled.p50_ms <= run.polled.p99_ms < 5_000
    # the reader polls a score after the broker appended it
    assert run.appended.p99_ms <= run.polled.p99_ms
    assert run.state[peer.STATE_NAME] > 0 and run.cpu_cores > 0
