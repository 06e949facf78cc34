"""`rtml submit` path: the job on a real local Flink standalone session cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.kafka_client import read_topic
from rtml.cli.commands.data import produce_scenario, scenario_options
from rtml.cli.commands.job import JobTarget, submit
from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.integration


def test_submitted_job_scores_every_event(cfg, broker, model, cluster):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("sub.")
    produced = produce_scenario(
        c,
        scenario_options(
            seed=8,
            events=1500,
            days=1.0,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.25,
            bad_fraction=0.02,
        ),
    )
    job_id = submit(
        c,
        JobTarget(Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix="sub.", bounded=True),
        cluster.address,
        detached=False,
    )
    assert job_id != "?"
    jobs = {j["jid"]: j for j in cluster.jobs()}
    assert jobs[job_id]["state"] == "FINISHED"
    scores = read_topic(c, c.kafka.topics.scores)
    assert len(scores) == produced.valid == len({s["event_id"] for s in scores})
    assert len(read_topic(c, c.kafka.topics.dead_letter)) == produced.bad
