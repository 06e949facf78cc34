"""The `rtml bench` baselines run on the local cluster: the floor forwards every record, the
naive design scores every valid event with every model input (its features recomputed from
the raw events kept per key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.kafka_client import read_topic
from rtml.cli.commands.data import produce_scenario, scenario_options
from rtml.cli.commands.job import JobTarget, submit
from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("part", ["floor", "naive"])
def test_baseline_jobs_output_one_record_per_input(cfg, broker, model, cluster, part):
    prefix = f"bl-{part}."
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(prefix)
    produced = produce_scenario(
        c,
        scenario_options(
            seed=31,
            events=400,
            days=0.2,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.25,
            bad_fraction=0.02,
        ),
    )
    target = JobTarget(
        Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix=prefix, bounded=True, part=part
    )
    submit(c, target, cluster.address, detached=False)
    out = read_topic(c, c.kafka.topics.scores, parse=part != "floor")
    if part == "floor":
        assert len(out) == produced.events  # every raw record, malformed ones included
        return
    assert len(out) == produced.valid
    assert len({s["event_id"] for s in out}) == produced.valid
    inputs = {i.name for i in model.metadata.inputs}
    for s in out:
        assert 0.0 <= s["score"] <= 1.0
        assert set(s["inputs"]) == inputs
    assert len(read_topic(c, c.kafka.topics.dead_letter)) == produced.bad
