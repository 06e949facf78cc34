"""Flink tier (JVM, no cluster): `rtml plan` on the job's real graph, built as the job entry
point builds it and planned by Flink, on a fresh home without a registered model.

Python stages are the Python nodes of Flink's plan after PyFlink's operator fusion: each one
holds its records until its bundle ends, so they bound the pipeline's latency."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy.process import child_env
from rtml.core import paths

pytestmark = pytest.mark.flink

CONFIGS = paths.DEPLOY_DIR / "configs"


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """No model registered: the graph is built without the model check."""
    monkeypatch.setenv("RTML_HOME", str(tmp_path))
    return tmp_path


def planned(config_name: str, part: str):
    from rtml.cli.commands.plan import job_plan
    from rtml.core.config import load_config

    plan, model = job_plan(load_config(CONFIGS / config_name), part)
    assert not model.registered and model.version == "current"
    return plan


def test_card_scoring_runs_three_python_stages(fresh_home):
    plan = planned("cards.toml", "scoring")
    assert plan.python_stages == 3, [op.name for op in plan.operators if op.python]


def test_one_entity_scoring_runs_two_python_stages(fresh_home):
    """As many as the engine floor: key selector and one keyed function."""
    plan = planned("cards-one-entity.toml", "scoring")
    assert plan.python_stages == 2, [op.name for op in plan.operators if op.python]


@pytest.mark.parametrize(
    "args, part, stages",
    [
        (["--part", "floor"], "floor", 2),
        # event-time order: one more, the scoring apart from the last feature stage (a
        # broadcast operator of its own); its timestamps are read in the JVM source
        (["--feature-order", "event-time"], "scoring", 4),
    ],
)
def test_plan_json_on_the_command_line(fresh_home, args, part, stages):
    r = subprocess.run(
        [sys.executable, "-m", "rtml.cli", "plan", *args, "--json"],
        capture_output=True,
        text=True,
        env=child_env(),  # not this process's PyFlink gateway, which earlier tests started
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # nothing else on stdout
    assert doc["part"] == part and doc["config"].endswith("cards.toml")
    assert doc["python_stages"] == stages == sum(op["python"] for op in doc["operators"])


def test_the_plan_is_flinks_after_python_fusion():
    """The annotated plan is get_execution_plan's JSON, and shows PyFlink's fusion: chained
    one-input Python functions become one node named after them all."""
    from pyflink.common import Types
    from pyflink.datastream import KeyedProcessFunction, StreamExecutionEnvironment

    from flink_jobs.explain import annotated_plan
    from flink_jobs.plan import ANNOTATION, parse_plan, upstream_first

    class Pass(KeyedProcessFunction):
        def process_element(self, value, ctx):
            yield value

    env = StreamExecutionEnvironment.get_execution_environment()
    ds = env.from_collection(["a", "b"], type_info=Types.STRING())
    ds = ds.map(lambda x: x, output_type=Types.STRING()).name("m1")
    ds = ds.filter(lambda x: True).name("f1")
    ds = ds.key_by(lambda x: x, key_type=Types.STRING())
    ds.process(Pass(), output_type=Types.STRING()).name("k1").print()

    flink = json.loads(env.get_execution_plan())
    doc = annotated_plan(env)
    assert [{k: v for k, v in n.items() if k != ANNOTATION} for n in doc["nodes"]] == flink["nodes"]
    plan = parse_plan(doc)
    assert plan.python_stages == 2
    assert [op.functions for op in upstream_first(plan) if op.python] == [
        ("m1", "f1", "_stream_key_by_map_operator"),
        ("k1",),
    ]


def test_a_second_consumer_of_a_middle_stage_costs_stages(fresh_home, monkeypatch):
    """The count comes from Flink's plan, not from rtml: reading a side output of the
    account stage (as the graph did before the fusion) breaks the fusion with the merchant
    key selector, and PyFlink's get_side_output adds its identity map: the count rises."""
    from flink_jobs import stages
    from flink_jobs.tags import LATE_EVENTS

    middle = stages.middle_feature_stage

    def with_side_output(stream, cfg, entity, first):
        out = middle(stream, cfg, entity, first)
        out.get_side_output(LATE_EVENTS).print()
        return out

    assert planned("cards.toml", "scoring").python_stages == 3
    monkeypatch.setattr(stages, "middle_feature_stage", with_side_output)
    assert planned("cards.toml", "scoring").python_stages == 5
