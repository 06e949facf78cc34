"""`rtml bench`: the product's pipeline against the engine floor and a naive design.

On the local broker and cluster, in one run, over the same input:
  (a) floor: Kafka in -> key by account -> an empty keyed Python function -> Kafka out
  (b) naive: raw events per key in list state, features recomputed, one ONNX call per event
  (c) rtml:  the product's scoring job with its side outputs (``--part scoring``; the
             monitors run as their own job in the recommended deployment)

1. Throughput: each job runs bounded over the same preloaded backlog; events/s is the scores'
   count over the span of their broker append times (start-up excluded).
2. Latency at a fixed offered load (half of (c)'s throughput): each job runs unbounded while
   events are produced at that rate; per event, scores' append time minus the event's append
   time (both LogAppendTime on one broker). (a), (b), (c) with at-least-once delivery, and (c)
   again with exactly-once (output visible at checkpoints).
3. CPU (cores busy) and peak RSS of the TaskManagers and their Python workers, and state bytes
   per key from the job's checkpoint after the load.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from deploy.flink_cluster import Cluster
from deploy.flink_rest import FlinkRest
from deploy.kafka_broker import Broker
from rtml.bench.load import produce_paced
from rtml.bench.measure import (
    Latency,
    ProcessSampler,
    append_times,
    event_id_of,
    latency,
    state_bytes_per_key,
    throughput,
)
from rtml.bench.report import print_table, write_plot
from rtml.commands import services
from rtml.commands.data import ensure_model, scenario_options
from rtml.commands.job import JobTarget, submit
from rtml.config import JobConfig, load_config
from rtml.console import say, step
from rtml.kafka_client import end_offsets, ensure_topics, produce
from rtml.scenarios.cards import generate

# (c) is the scoring job with its side outputs (dead letters, late events): the deployment the
# README recommends for live traffic, with the monitors as their own job reading the scores
# topic (in one job, Evidently's seconds per window hold up the stream it shares)
JOBS = {"floor": "a. engine floor", "naive": "b. naive design", "scoring": "c. rtml pipeline"}
KEYED_VERTICES = {
    "floor": ("empty keyed function",),
    "naive": ("naive features",),
    "scoring": ("features by",),
}
EVENTS_PER_DAY = 6000  # the demo's rate: a few days of history warm the feature state up
WARMUP_FRACTION = 0.1  # the first 10% of the paced events are not measured


@dataclass(frozen=True)
class BenchOptions:
    config: Path
    out: Path
    events: int = 5_000
    seconds: float = 30.0
    rate: float | None = None  # None: half of (c)'s measured throughput
    broker_port: int = 9092
    rest_port: int = 8081
    bundle_time_ms: int | None = None  # None: the config's [job] bundle_time
    python_workers: int = 2  # (c)'s Python processes: the TaskManager's two slots


@dataclass
class JobFigures:
    job: str
    label: str
    throughput_eps: float = math.nan
    cpu_cores_at_max: float = math.nan
    rss_mb_at_max: float = math.nan
    latency: dict[str, dict] = field(default_factory=dict)  # delivery -> Latency fields
    cpu_cores_at_load: float = math.nan
    rss_mb_at_load: float = math.nan
    state_bytes_per_key: float = math.nan


def run_bench(o: BenchOptions) -> dict:
    services.setup()
    broker = Broker(port=o.broker_port)
    step("starting the Kafka broker (KRaft, 127.0.0.1)")
    say("    " + broker.start())
    cluster = Cluster.on_port(o.rest_port, slots=2)
    if not cluster.running():
        step("starting the local Flink cluster (1 TaskManager, 2 slots)")
        say("    " + cluster.start(taskmanagers=1))
    base = load_config(o.config).with_bootstrap(broker.bootstrap)
    ensure_model(base, False, 12_000, 12_000 / EVENTS_PER_DAY, 0.25)
    stamp = time.strftime("%Y%m%d%H%M%S")
    target = JobTarget(o.config, bootstrap=broker.bootstrap, bundle_time_ms=o.bundle_time_ms)
    # (a) and (b) are one Python stage each: one worker. (c) has four Python stages; split
    # over two workers it keeps both cores busy (flink_jobs.graph.SCORING_SLOTS)
    workers = {"floor": None, "naive": None, "scoring": o.python_workers}
    figs = {k: JobFigures(k, label) for k, label in JOBS.items()}

    sc = generate(_scenario(o.events, seed=11))
    raw, labels = list(sc.raw_events()), [json.dumps(lab) for lab in sc.labels]
    for kind in JOBS:
        prefix = f"bench-{stamp}-{kind}-max."
        cfg = base.with_topic_prefix(prefix)
        step(f"throughput of {JOBS[kind]}: {len(raw)} events preloaded")
        ensure_topics(cfg)
        produce(cfg, cfg.kafka.topics.events, raw)
        produce(cfg, cfg.kafka.topics.labels, labels)
        sampler = ProcessSampler(cluster.taskmanager_processes).start()
        submit(
            cfg,
            replace(
                target,
                topic_prefix=prefix,
                bounded=True,
                part=kind,
                python_workers=workers[kind],
            ),
            cluster.address,
            detached=False,
        )
        sampler.stop()
        out = append_times(cfg, cfg.kafka.topics.scores, cfg.schema.event_id)
        f = figs[kind]
        f.throughput_eps = throughput(out.values())
        f.cpu_cores_at_max, f.rss_mb_at_max = sampler.cpu_cores, sampler.peak_rss / 2**20
        say(f"    {len(out)} outputs, {f.throughput_eps:,.0f} events/s")

    rate = o.rate or 0.5 * figs["scoring"].throughput_eps
    n = max(50, int(rate * o.seconds))
    paced = generate(_scenario(n, seed=12))
    paced_raw = list(paced.raw_events())
    keys = {e.name: len({ev[e.key] for ev in paced.events}) for e in base.schema.entities}
    valid_ids = {ev[base.schema.event_id] for ev in paced.events}
    for kind, delivery in (
        ("floor", "at-least-once"),
        ("naive", "at-least-once"),
        ("scoring", "at-least-once"),
        ("scoring", "exactly-once"),
    ):
        prefix = f"bench-{stamp}-{kind}-{delivery}."
        cfg = base.with_topic_prefix(prefix)
        step(f"latency of {JOBS[kind]} ({delivery}) at {rate:,.0f} events/s for {o.seconds:g}s")
        lat, sampler, state = _latency_run(
            cfg,
            replace(
                target,
                topic_prefix=prefix,
                part=kind,
                delivery=delivery,
                python_workers=workers[kind],
            ),
            cluster,
            paced_raw,
            valid_ids,
            rate,
        )
        f = figs[kind]
        f.latency[delivery] = asdict(lat)
        say(
            f"    p50 {lat.p50_ms:,.0f} ms, p99 {lat.p99_ms:,.0f} ms ({lat.n} events, {lat.missing} missing)"
        )
        if delivery == "at-least-once":
            f.cpu_cores_at_load, f.rss_mb_at_load = sampler.cpu_cores, sampler.peak_rss / 2**20
            n_keys = keys[base.schema.entities[0].name] if kind == "floor" else sum(keys.values())
            f.state_bytes_per_key = state_bytes_per_key(state, KEYED_VERTICES[kind], n_keys)

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "events_preloaded": len(raw),
        "offered_rate_eps": rate,
        "paced_events": len(paced_raw),
        "checkpoint_interval_ms": base.job.checkpoint_interval_ms,
        "bundle_time_ms": o.bundle_time_ms or base.job.bundle_time_ms,
        "pipeline_python_workers": o.python_workers,
        "jobs": {k: asdict(v) for k, v in figs.items()},
    }
    result["ratios"] = ratios(result["jobs"])
    result["targets"] = targets(result)
    o.out.mkdir(parents=True, exist_ok=True)
    (o.out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    write_plot(result, o.out / "bench.png")
    print_table(result)
    say(f"\nfigures: {o.out / 'bench.json'}, plot: {o.out / 'bench.png'}")
    return result


def _scenario(events: int, seed: int):
    return scenario_options(
        seed=seed,
        events=events,
        days=events / EVENTS_PER_DAY,
        drift_at_h=None,
        drift_size=0.0,
        bias=0.25,
        bad_fraction=0.01,
    )


def _latency_run(
    cfg: JobConfig,
    target: JobTarget,
    cluster: Cluster,
    records: list[str],
    valid_ids: set[str],
    rate: float,
) -> tuple[Latency, ProcessSampler, dict[str, int]]:
    """One unbounded run at a fixed offered load; latency over the valid events after the
    warm-up (the floor forwards malformed records too, the others dead-letter them)."""
    rest = FlinkRest(cluster.address)
    ensure_topics(cfg)
    t = cfg.kafka.topics
    expected = len(records) if target.part == "floor" else len(valid_ids)
    job_id = submit(cfg, target, cluster.address, detached=True)
    try:
        rest.wait_for_state(job_id, {"RUNNING"}, 120)
        time.sleep(10)  # the Python workers start and the source is assigned its partitions
        sampler = ProcessSampler(cluster.taskmanager_processes).start()
        produce_paced(cfg, t.events, records, rate)
        # a job that cannot keep up is given a while, then measured as it is
        deadline = time.monotonic() + max(60.0, len(records) / rate)
        while end_offsets(cfg, [t.scores])[t.scores] < expected and time.monotonic() < deadline:
            time.sleep(1)
        sampler.stop()
        state = _state_after(rest, job_id, time.time() * 1000)
        ins = append_times(cfg, t.events, cfg.schema.event_id)
        outs = append_times(cfg, t.scores, cfg.schema.event_id)
    finally:
        rest.cancel(job_id)
        rest.wait_for_state(job_id, {"CANCELED", "FAILED", "FINISHED"}, 60)
    warmup = {
        event_id_of(r, cfg.schema.event_id) for r in records[: int(len(records) * WARMUP_FRACTION)]
    }
    measured = {e: ts for e, ts in ins.items() if e in valid_ids and e not in warmup}
    return latency(measured, outs), sampler, state


def _state_after(rest: FlinkRest, job_id: str, after_ms: float) -> dict[str, int]:
    """State by vertex in the first checkpoint triggered after ``after_ms``; an overloaded job
    may complete none in time (its barriers wait behind the backlog): then the latest one,
    or nothing."""
    deadline = time.monotonic() + 60
    cp = None
    while time.monotonic() < deadline:
        cp = rest.latest_checkpoint(job_id)
        if cp and cp.get("trigger_timestamp", 0) > after_ms:
            break
        time.sleep(1)
    if not cp:
        say(f"    no checkpoint of job {job_id} completed: state per key not measured")
        return {}
    return rest.checkpoint_state_by_vertex(job_id, cp["id"])


def ratios(jobs: dict) -> dict[str, float]:
    a, b, c = (jobs[k]["throughput_eps"] for k in ("floor", "naive", "scoring"))
    return {"c_over_a": c / a, "c_over_b": c / b}


def targets(result: dict) -> dict[str, dict]:
    """The issue's targets for (c), each with the measured value and whether it is met."""
    jobs, r = result["jobs"], result["ratios"]
    lat = jobs["scoring"]["latency"]
    eo_limit = result["checkpoint_interval_ms"] + 50
    rows = {
        "throughput >= 0.7 x floor": (r["c_over_a"], r["c_over_a"] >= 0.7),
        "throughput >= 3 x naive": (r["c_over_b"], r["c_over_b"] >= 3),
        "p99 <= 50 ms at half load (at-least-once)": (
            lat["at-least-once"]["p99_ms"],
            lat["at-least-once"]["p99_ms"] <= 50,
        ),
        f"p99 <= {eo_limit} ms at half load (exactly-once)": (
            lat["exactly-once"]["p99_ms"],
            lat["exactly-once"]["p99_ms"] <= eo_limit,
        ),
        "state <= 2 KB per key": (
            jobs["scoring"]["state_bytes_per_key"],
            jobs["scoring"]["state_bytes_per_key"] <= 2048,
        ),
    }
    return {k: {"measured": v, "met": bool(ok)} for k, (v, ok) in rows.items()}
