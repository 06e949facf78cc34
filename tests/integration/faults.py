"""Faults and checks shared by the failure tests and the soak: killing a TaskManager with its
Python workers, waiting for the job to run again, and the exactly-once check (every event
scored once, features equal to the failure-free offline replay)."""

from __future__ import annotations

import collections
import math
from pathlib import Path

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import read_topic
from rtml.cli.commands.data import scenario_options
from rtml.cli.commands.job import JobTarget
from rtml.cli.scenarios.cards import generate
from tests.conftest import DEMO_CONFIG
from udfs.features import apply
from udfs.features.offline import FeatureReplay


def card_events(seed: int, n: int, days: float) -> list[dict]:
    """The card scenario's valid events (no malformed records, bias 0.2): the input of the
    failure tests and the soak."""
    return generate(
        scenario_options(
            seed=seed,
            events=n,
            days=days,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.2,
            bad_fraction=0,
        )
    ).events


def scoring_target(
    broker, prefix: str, order: str = "arrival", parallelism: int = 1, bounded: bool = False
) -> JobTarget:
    """The scoring job of the demo config, exactly-once (the config's delivery). Features on
    arrival at parallelism 1, or in event-time order at any parallelism: either way every
    replay after a restart applies each key's events in the same order, so the features must
    equal the failure-free replay exactly (in event-time order, over the events in (event
    time, event id) order)."""
    return JobTarget(
        Path(DEMO_CONFIG),
        bootstrap=broker.bootstrap,
        topic_prefix=prefix,
        part="scoring",
        bounded=bounded,
        parallelism=parallelism,
        feature_order=order,
    )


def in_event_time_order(events: list[dict]) -> list[dict]:
    """The card events in the order event-time order applies them (the job's own rule)."""
    return apply.in_event_time_order(events, "event_time", "event_id")


def check_exactly_once(c, events: list[dict]) -> dict:
    """Every event scored once, features equal to the offline replay of ``events`` in the
    order given; returns the counts."""
    scores = read_topic(c, c.kafka.topics.scores)
    late = read_topic(c, c.kafka.topics.late)
    seen = collections.Counter(s["event_id"] for s in scores)
    seen.update(x["event"]["event_id"] for x in late)
    ids = {e["event_id"] for e in events}
    lost = len(ids - set(seen))
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    assert (lost, duplicated) == (0, 0), f"lost {lost}, duplicated {duplicated}"
    replay = FeatureReplay.for_job(c)
    expected = {e["event_id"]: replay.observe(e) for e in events}
    differing = 0
    for s in scores:
        want = expected[s["event_id"]]
        for name in c.features.names:
            have = s["inputs"][name]
            if not ((have is None and math.isnan(want[name])) or have == want[name]):
                differing += 1
    assert differing == 0, f"{differing} feature values differ from the failure-free replay"
    return {"scored": len(scores), "late": len(late), "lost": lost, "duplicated": duplicated}


def taskmanager_running(rest: FlinkRest, job: str) -> str:
    """A TaskManager that runs subtasks of the job (the one hosting the scoring operator)."""
    for v in rest.vertices(job):
        # the fused last stage: "features by merchant_id + score (ONNX Runtime) -> ..."
        if "score (ONNX Runtime)" in v["name"]:
            subtasks = rest.get(f"/jobs/{job}/vertices/{v['id']}")["subtasks"]
            return subtasks[0]["taskmanager-id"]
    raise AssertionError("the job has no scoring vertex")


def kill_tree(proc) -> int:
    """kill -9 the TaskManager and its Python workers; returns how many processes died."""
    victims = [proc, *proc.children(recursive=True)]
    for p in victims:
        try:
            p.kill()
        except Exception:  # already gone
            pass
    return len(victims)


def running_again(rest: FlinkRest, job: str, restarts: int) -> bool:
    return rest.restarts(job) > restarts and rest.job(job)["state"] == "RUNNING"
