"""Failures during a run, exactly-once end to end (slow: `make test-slow`).

- kill -9 of a TaskManager running the job (and its Python workers) three times while the
  job works through 100,000 events, in arrival order at parallelism 1 (the default
  deployment) and in event-time order at parallelism 2 (its subtasks spread over both
  TaskManagers, so a kill takes half of them); the job restarts from its last checkpoint,
  and a fresh TaskManager joins after each kill. At parallelism 2 the sources catch up a
  backlog of several partitions after each restart: the features stay exact only because
  the watermark is made per partition in the source (``flink_jobs.event_time``).
- kill -9 of the Kafka broker mid-run, restarted after a pause, more events produced after
  (parallelism 1, arrival order: the default deployment).

Either way, reading the scores with read_committed finds every event exactly once (0 lost,
0 duplicated), and every feature equals the failure-free computation: the offline replay of
the same events, which a failure-free run equals (``test_pipeline_on_kafka``). The figures go
to ``reliability-results/`` (see ``tests/integration/figures.py``).
"""

from __future__ import annotations

import json
import time

import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import committed_offsets, end_offsets, ensure_topics, produce
from rtml.cli.commands.job import jobs_stop, submit
from tests.integration.faults import (
    card_events,
    check_exactly_once,
    in_event_time_order,
    kill_tree,
    running_again,
    scoring_target,
    taskmanager_running,
)
from tests.integration.figures import record_figures
from tests.integration.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILL_EVENTS = 100_000
KILLS = 3
# (feature order, parallelism): the default deployment, and event-time order scaled out
KILL_RUNS = [("arrival", 1), ("event-time", 2)]
BROKER_EVENTS = 20_000
BROKER_DOWN_S = 15


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


@pytest.mark.parametrize("order,parallelism", KILL_RUNS, ids=[f"{o}-p{p}" for o, p in KILL_RUNS])
def test_kill_9_taskmanagers_three_times_loses_and_duplicates_nothing(
    cfg, broker, model, cluster, order, parallelism
):
    assert cfg.job.delivery == "exactly-once"
    prefix = f"kx{parallelism}."
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(prefix)
    events = card_events(51, KILL_EVENTS, days=10.0)
    ensure_topics(c)
    t = c.kafka.topics
    produce(c, t.events, [json.dumps(e) for e in events])

    rest = FlinkRest(cluster.address)
    t0 = time.monotonic()
    job = submit(
        c,
        scoring_target(broker, prefix, order, parallelism),
        cluster.address,
        detached=True,
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
            tm = taskmanager_running(rest, job)
            processes = kill_tree(cluster.taskmanager_process(tm))
            killed.append({"taskmanager": tm, "processes": processes, "at_scores": goal})
            wait_for(
                lambda r=restarts: running_again(rest, job, r), 300, f"recovery from kill {k + 1}"
            )
            cluster.add_taskmanager()
        restarts = _drain_once_consumed(c, cluster, job, len(events))
    except BaseException:  # a job left running would hold the slots the next tests need
        if rest.job(job)["state"] in ("RUNNING", "RESTARTING", "CREATED"):
            rest.cancel(job)
        raise
    seconds = time.monotonic() - t0

    figures: dict = {}
    try:
        replayed = in_event_time_order(events) if order == "event-time" else events
        figures.update(check_exactly_once(c, replayed))
    finally:
        print(f"kill run, {order} order, parallelism {parallelism}: {figures}")
    assert restarts >= KILLS
    record_figures(
        f"kill_taskmanagers_{order}_p{parallelism}",
        {
            **figures,
            "events": len(events),
            "parallelism": parallelism,
            "feature_order": order,
            "taskmanagers_killed": len(killed),
            "processes_killed": sum(k["processes"] for k in killed),
            "job_restarts": restarts,
            "run_seconds": round(seconds, 1),
        },
    )


def test_broker_killed_and_restarted_mid_run_loses_and_duplicates_nothing(
    cfg, broker, model, cluster
):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("bx.")
    events = card_events(52, BROKER_EVENTS, days=3.0)
    raw = [json.dumps(e) for e in events]
    half = len(raw) // 2
    ensure_topics(c)
    t = c.kafka.topics
    produce(c, t.events, raw[:half])

    rest = FlinkRest(cluster.address)
    job = submit(c, scoring_target(broker, "bx."), cluster.address, detached=True)
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

    counts = check_exactly_once(c, events)
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
