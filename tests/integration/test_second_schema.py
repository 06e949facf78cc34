"""The same job, unchanged, on a second scenario with a different schema (ride-hailing trips).

Different field names, ISO-8601 event times, other entities and features, another label
topic and sensitive attribute: a model is trained on the job's offline features of a history,
exported, and the job scores a fresh stream with it on the real broker.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from deploy.kafka_client import ensure_topics, produce, read_topic
from models.dataset import build_dataset
from models.export import export
from models.store.registry import Registry
from models.train import train
from rtml.cli.commands.job import JobTarget, run_embedded
from rtml.core import paths
from rtml.core.config import load_config
from tests.integration.trips.generator import trips
from udfs.features.offline import FeatureReplay
from udfs.validation import parse_event

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).parent / "trips" / "trips.toml"


def test_trips_job_on_kafka(broker, rtml_home):
    cfg = load_config(CONFIG).with_bootstrap(broker.bootstrap).with_topic_prefix("it2.")
    hist_events, hist_labels, _ = trips(seed=1, n=4000, hours=48)
    df = build_dataset(cfg, hist_events, hist_labels)
    train(cfg, df, paths.artifacts_dir() / cfg.model.name, progress=lambda m: None)
    mv = export(
        paths.artifacts_dir() / cfg.model.name,
        Registry(paths.registry_dir()),
        progress=lambda m: None,
    )

    events, labels, n_valid = trips(seed=2, n=1500, hours=16, bad=15)
    ensure_topics(cfg)
    produce(cfg, cfg.kafka.topics.events, events)
    produce(cfg, cfg.kafka.topics.labels, labels)
    run_embedded(
        cfg, JobTarget(CONFIG, bootstrap=broker.bootstrap, topic_prefix="it2.", bounded=True)
    )

    scores = read_topic(cfg, cfg.kafka.topics.scores)
    assert len(scores) == n_valid == len({s["trip_id"] for s in scores})
    assert all(
        s["model"] == "trips-complaints" and s["model_version"] == mv.metadata.version
        for s in scores
    )
    assert len(read_topic(cfg, cfg.kafka.topics.dead_letter)) == 15

    replay = FeatureReplay.for_job(cfg)
    expected = {}
    for raw in events:
        if raw.startswith('{"trip_id": "bad-'):
            continue
        ev = parse_event(raw, cfg.schema)
        expected[ev["trip_id"]] = replay.observe(ev)
    for s in scores:
        for name, want in expected[s["trip_id"]].items():
            have = s["inputs"][name]
            assert (have is None and math.isnan(want)) or have == want, (s["trip_id"], name)

    # sliding fairness windows, 4h every 2h, over 16h of events: 9 windows, each event in 2
    fairness = [r for r in read_topic(cfg, cfg.kafka.topics.fairness) if r["status"] == "final"]
    assert len(fairness) == 9 and all(set(r["groups"]) <= {"f", "m", "x"} for r in fairness)
    assert sum(r["predictions"] for r in fairness) == 2 * n_valid
    assert len(read_topic(cfg, cfg.kafka.topics.drift)) == 4
