"""Failures during a run, exactly-once end to end (slow: `make test-slow`).

- kill -9 of the TaskManager running the job (and its Python workers) three times while the
  job works through 100,000 events at parallelism 2 in event-time order; the job restarts on
  the other TaskManager from its last checkpoint, and a fresh TaskManager joins after each
  kill.
- kill -9 of the Kafka broker mid-run, restarted after a pause, more events produced after
  (parallelism 1, arrival order: the default deployment).

Either way, reading the scores with read_committed finds every event exactly once (0 lost,
0 duplicated), and every feature equals the failure-free computation: the offline replay of
the same events, which a failure-free run equals (``test_pipeline_on_kafka``). The figures go
to ``reliability-results/`` (see ``tests/integration/figures.py``).
"""

from __future__ import annotations

import collections
import json
import math
import time
from pathlib import Path

import pytest

from deploy.flink_rest import FlinkRest
from rtml.commands.data import scenario_options
from rtml.commands.job import JobTarget, jobs_stop, submit
from rtml.kafka_client import committed_offsets, end_offsets, ensure_topics, produce, read_topic
from rtml.scenarios.cards import generate
from tests.conftest import DEMO_CONFIG
from tests.integration.figures import record_figures
from tests.integration.waiting import wait_for
from udfs.features.offline import FeatureReplay

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILL_EVENTS = 100_000
KILLS = 3
KILL_PARALLELISM = 2
BROKER_EVENTS = 20_000
BROKER_DOWN_S = 15


def _events(seed: int, n: int, days: float) -> list[dict]:
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


def _target(broker, prefix: str, order: str = "arrival", parallelism: int = 1) -> JobTarget:
    """Exactly-once (the config's delivery). Features on arrival at parallelism 1, or in
    event-time order at any parallelism: either way every replay after a restart applies
    each key's events in the same order, so the features must equal the failure-free replay
    exactly (in event-time order, over the events in (event time, event id) order)."""
    return JobTarget(
        Path(DEMO_CONFIG),
        bootstrap=broker.bootstrap,
        topic_prefix=prefix,
        part="scoring",
        parallelism=parallelism,
        feature_order=order,
    )


def in_event_time_order(events: list[dict]) -> list[dict]:
    return sorted(events, key=lambda e: (e["event_time"], e["event_id"]))


def _check_exactly_once(c, events: list[dict]) -> dict:
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


def _taskmanager_running(rest: FlinkRest, job: str) -> str:
    """A TaskManager that runs subtasks of the job (the one hosting the scoring operator)."""
    for v in rest.vertices(job):
        # the fused last stage: "features by merchant_id + score (ONNX Runtime) -> ..."
        if "score (ONNX Runtime)" in v["name"]:
            subtasks = rest.get(f"/jobs/{job}/vertices/{v['id']}")["subtasks"]
            return subtasks[0]["taskmanager-id"]
    raise AssertionError("the job has no scoring vertex")


def _kill_tree(proc) -> int:
    """kill -9 the TaskManager and its Python workers; returns how many processes died."""
    victims = [proc, *proc.children(recursive=True)]
    for p in victims:
        try:
            p.kill()
        except Exception:  # already gone
            pass
    return len(victims)


def _drain_once_consumed(c, cluster, job: str, n_events: int) -> int:
    """Wait until the job has consumed and checkpointed every event, then stop it with
    ``drain`` (its last transaction committed); returns how often it restarted."""
    topic = c.kafka.topics.events
    wait_for(
        lambda: committed_offsets(c, [topic])[topic] >= n_events,
        900,
        "the job to consume and checkpoint every event",
        every=2,
    )
    restarts = cluster.rest.restarts(job)
    jobs_stop(cluster.address, job, None, drain=True)
    return restarts


def _running_again(rest: FlinkRest, job: str, restarts: int) -> bool:
    return rest.restarts(job) > restarts and rest.job(job)["state"] == "RUNNING"


def test_kill_9_taskmanagers_three_times_loses_and_duplicates_nothing(cfg, broker, model, cluster):
    assert cfg.job.delivery == "exactly-once"
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("kx.")
    events = _events(51, KILL_EVENTS, days=10.0)
    ensure_topics(c)
    t = c.kafka.topics
    produce(c, t.events, [json.dumps(e) for e in events])

    rest = FlinkRest(cluster.address)
    t0 = time.monotonic()
    job = submit(
        c, _target(broker, "kx.", "event-time", KILL_PARALLELISM), cluster.address, detached=True
    )
    rest.wait_for_state(job, {"RUNNING"}, 120)
    killed: list[dict] = []
    try:
        for k in range(KILLS):
            # spread the kills over the run: after 20%, 45% and 70% of the scores are committed
            goal = int(len(events) * (0.2 + 0.25 * k))
            wait_for(
                lambda g=goal: end_offsets(c, [t.scores])[t.scores] >= g,
                900,
                f"{goal} committed scores before kill {k + 1}",
                every=2,
            )
            restarts = rest.restarts(job)
            tm = _taskmanager_running(rest, job)
            processes = _kill_tree(cluster.taskmanager_process(tm))
            killed.append({"taskmanager": tm, "processes": processes, "at_scores": goal})
            wait_for(
                lambda r=restarts: _running_again(rest, job, r), 300, f"recovery from kill {k + 1}"
            )
            cluster.add_taskmanager()
        restarts = _drain_once_consumed(c, cluster, job, len(events))
    except BaseException:  # a job left running would hold the slots the next tests need
        if rest.job(job)["state"] in ("RUNNING", "RESTARTING", "CREATED"):
            rest.cancel(job)
        raise
    seconds = time.monotonic() - t0

    counts = _check_exactly_once(c, in_event_time_order(events))
    assert restarts >= KILLS
    record_figures(
        "kill_taskmanagers",
        {
            "events": len(events),
            "parallelism": KILL_PARALLELISM,
            "feature_order": "event-time",
            "taskmanagers_killed": len(killed),
            "processes_killed": sum(k["processes"] for k in killed),
            "job_restarts": restarts,
            "run_seconds": round(seconds, 1),
            **counts,
        },
    )


def test_broker_killed_and_restarted_mid_run_loses_and_duplicates_nothing(
    cfg, broker, model, cluster
):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("bx.")
    events = _events(52, BROKER_EVENTS, days=3.0)
    raw = [json.dumps(e) for e in events]
    half = len(raw) // 2
    ensure_topics(c)
    t = c.kafka.topics
    produce(c, t.events, raw[:half])

    rest = FlinkRest(cluster.address)
    job = submit(c, _target(broker, "bx."), cluster.address, detached=True)
    rest.wait_for_state(job, {"RUNNING"}, 120)
    wait_for(
        lambda: end_offsets(c, [t.scores])[t.scores] >= half // 3,
        600,
        "a third of the first half scored",
        every=2,
    )
    broker.kill()
    time.sleep(BROKER_DOWN_S)
    broker.start()
    produce(c, t.events, raw[half:])  # the stream goes on after the restart
    restarts = _drain_once_consumed(c, cluster, job, len(events))

    counts = _check_exactly_once(c, events)
    record_figures(
        "broker_restart",
        {
            "events": len(events),
            "parallelism": 1,
            "feature_order": "arrival",
            "broker_kills": 1,
            "broker_down_seconds": BROKER_DOWN_S,
            "job_restarts": restarts,
            **counts,
        },
    )
