"""`rtml backfill`: warm the feature state from history, so that live scoring starts on it.

A first deployment, or a changed feature set, would score on cold state for up to the
longest window. The history is sent to a topic of its own and read by the job's own parse
and feature stages (the backfill part of the graph: the same uids and state, nothing
scored, nothing written) on a session cluster; once the job's consumer group has committed
the topic's end (a checkpoint holds every history record's effect), the job is stopped with
a savepoint and the topic deleted. ``rtml submit --part scoring --from-savepoint`` then scores
live traffic
on that state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import (
    committed_offsets,
    delete_topics,
    end_offsets,
    ensure_topics,
    produce,
)
from rtml.cli.commands.file_replay import read_records, record_time, split_label
from rtml.cli.commands.job import JobTarget, submit
from rtml.cli.console import Progress, say, step
from rtml.core.config import BACKFILL_PART, JobConfig
from rtml.core.errors import ConfigError, JobError, ServiceError

POLL_S = 2.0
METRICS_WAIT_S = 60.0
MIN_WAIT_S = 300.0
RECORDS_PER_S_AT_WORST = 100  # how slowly a backfill may read before rtml gives up on it
# the job's counters that say what became of the history's records
COUNTERS = ("records_in", "dead_lettered", "duplicates", "late_events")


@dataclass(frozen=True)
class Backfilled:
    records: int  # history records sent (and read)
    savepoint: str
    counters: dict[str, int]  # COUNTERS, summed over the job's operators


def history_records(
    cfg: JobConfig, history: Path, until_ms: int | None, label_field: str | None
) -> list[str]:
    """The history as the events topic would get it (``rtml produce --file``), without its
    label field, up to ``until_ms`` (event time; a record whose time cannot be read is kept,
    for the job to judge)."""
    records = read_records(history, cfg.schema)
    if label_field is not None:
        records = [split_label(r, cfg, label_field, 0)[0] for r in records]
    if until_ms is not None:
        records = [r for r in records if (t := record_time(r, cfg.schema)) is None or t <= until_ms]
    if not records:
        raise ConfigError(
            f"{history}: no records to backfill{' up to --until' if until_ms is not None else ''}",
            hint="pass a file of past events (JSON lines or CSV)"
            + (", or a later --until" if until_ms is not None else ""),
        )
    return records


def _totals(metrics: dict[str, dict[str, float]]) -> dict[str, int]:
    totals = dict.fromkeys(COUNTERS, 0)
    for values in metrics.values():
        for metric, v in values.items():
            name = metric.rsplit(".", 1)[-1]
            if name in totals:
                totals[name] += int(v)
    return totals


def _wait_read(cfg: JobConfig, rest: FlinkRest, job_id: str, topic: str, total: int) -> None:
    """Until the job's consumer group has committed the topic's end (it commits when a
    checkpoint completes, so that checkpoint holds every record's effect)."""
    group = replace(cfg, kafka=replace(cfg.kafka, group_id=f"{cfg.kafka.group_id}-{topic}"))
    deadline = time.monotonic() + max(MIN_WAIT_S, total / RECORDS_PER_S_AT_WORST)
    prog = Progress("history records read", total)
    while True:
        done = committed_offsets(group, [topic])[topic]
        prog.update(done, force=done >= total)
        if done >= total:
            return
        state = rest.job(job_id).get("state", "?")
        failure = rest.rtml_failure(job_id)
        if state not in ("RUNNING", "CREATED", "INITIALIZING") or failure:
            rest.cancel(job_id)
            raise JobError(
                f"the backfill job {job_id} is {state}"
                + (f": {failure}" if failure else "")
                + f" after {done} of {total} records",
                hint="read the TaskManager log (`rtml cluster status`); the history topic "
                f"{topic!r} is kept for a look",
            )
        if time.monotonic() > deadline:
            rest.cancel(job_id)
            raise JobError(
                f"the backfill job {job_id} read {done} of {total} records in "
                f"{max(MIN_WAIT_S, total / RECORDS_PER_S_AT_WORST):.0f} s and was cancelled",
                hint="check the cluster's load, or backfill a shorter history (--until)",
            )
        time.sleep(POLL_S)


def _counters(rest: FlinkRest, job_id: str, total: int) -> dict[str, int]:
    """The job's counters once they count every record (the JobManager fetches metrics from
    the TaskManagers every few seconds), or as they stand after ``METRICS_WAIT_S``."""
    deadline = time.monotonic() + METRICS_WAIT_S
    while True:
        counters = _totals(rest.operator_metrics(job_id, prefix=".rtml."))
        if counters["records_in"] >= total or time.monotonic() > deadline:
            return counters
        time.sleep(POLL_S)


def backfill(
    cfg: JobConfig,
    target: JobTarget,
    history: Path,
    jobmanager: str,
    until_ms: int | None = None,
    label_field: str | None = None,
    savepoint_dir: str | None = None,
) -> Backfilled:
    rest = FlinkRest(jobmanager)
    if rest.overview() is None:
        raise ServiceError(
            f"no Flink cluster answers at {jobmanager}: a backfill leaves a savepoint, which needs one",
            hint="start one with `rtml cluster start` or pass --jobmanager HOST:PORT",
        )
    records = history_records(cfg, history, until_ms, label_field)
    topic = f"{cfg.kafka.topics.events}.backfill-{time.strftime('%Y%m%d-%H%M%S')}"
    ensure_topics(cfg, [topic])
    step(f"sending {len(records)} history records of {history} to {topic!r}")
    prog = Progress("records sent", len(records))
    produce(cfg, topic, records, progress=prog.update)
    prog.update(len(records), force=True)
    total = end_offsets(cfg, [topic])[topic]
    job_id = submit(
        cfg,
        replace(target, part=BACKFILL_PART, backfill_topic=topic, bounded=False),
        jobmanager,
        detached=True,
    )
    rest.wait_all_running(job_id)
    step(f"replaying them through the feature stages of job {job_id} (nothing is scored)")
    _wait_read(cfg, rest, job_id, topic, total)
    counters = _counters(rest, job_id, total)
    step(f"stopping job {job_id} with a savepoint")
    path = rest.stop_with_savepoint(job_id, savepoint_dir, drain=False)
    delete_topics(cfg, [topic])
    if counters["records_in"] < total:
        say(f"    (the job's metrics counted {counters['records_in']} of them so far)")
    say(
        f"backfilled {len(records)} records: {counters['dead_lettered']} dead-lettered, "
        f"{counters['duplicates']} resent, {counters['late_events']} late (none of them scored)"
    )
    say(f"    savepoint: {path}")
    flags = "".join(
        f" --{k.replace('_', '-')} {v}"
        for k in ("feature_order", "state_backend", "parallelism")
        if (v := getattr(target, k))
    )
    say(
        f"    score live traffic on this state: rtml submit --part scoring --from-savepoint {path} "
        f"--allow-non-restored-state{flags}"
    )
    return Backfilled(len(records), path, counters)
