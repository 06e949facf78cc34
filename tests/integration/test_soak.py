"""Soak: the scoring job held under load for half an hour, with faults (`make soak`; marker
``soak``, in neither `make test` nor `make test-slow`).

The card job (arrival order at parallelism 1, or ``RTML_SOAK_ORDER`` and
``RTML_SOAK_PARALLELISM``), exactly-once, on the real local cluster
(two TaskManagers) and broker. Its maximum rate is measured first (a bounded run over a
preloaded backlog, the same job); then events are produced at half of it for
``RTML_SOAK_MINUTES`` (30), while a TaskManager (with its Python workers) is killed with
kill -9 every ``KILL_EVERY_S`` and a fresh one joins, and the broker is killed and restarted
once, mid-run (the producers pause while it is down, as a user's would). A live
read_committed reader records when each score is first seen; every ``SAMPLE_S`` the test
records the latest completed checkpoint (size, duration) and the resident memory of the
TaskManagers and their Python workers.

It passes only if: 0 events lost, 0 duplicated, every feature equal to the failure-free
offline replay; memory after the warm-up grows less than 10%; every
checkpoint after the warm-up stays within 20% of keys x bytes per key (the replay's state of
each key, as the job stores it: the pickled ``StoredFeatures``, the key, and its two timers);
and every recovery (from the kill until the reader sees new scores) takes under 60 s. The
figures and a plot go to ``reliability-results/soak.json`` and ``soak.png``.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import threading
import time
from pathlib import Path

import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import client_settings, committed_offsets, ensure_topics, produce
from rtml.cli.bench.measure import LiveReader, append_times, event_id_of, quantile, throughput
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
from tests.integration.figures import figures_dir, record_figures
from tests.integration.waiting import wait_for
from udfs.features.offline import FeatureReplay
from udfs.features.stored import StoredFeatures

pytestmark = [pytest.mark.integration, pytest.mark.soak]

MINUTES = float(os.environ.get("RTML_SOAK_MINUTES", "30"))
RATE = os.environ.get("RTML_SOAK_RATE")  # events/s; unset: half of the measured maximum
# arrival order at parallelism 1 by default (the default deployment). RTML_SOAK_ORDER=event-time
# RTML_SOAK_PARALLELISM=2 runs the scaled-out one (subtasks on both TaskManagers; the card
# scenario's hottest merchant holds 88% of the merchant stage's events): measured, it passes
# every criterion but the checkpoint size's, which counts keys x bytes per key and not the
# events waiting for the watermark, about a second of the stream, mostly in the hot
# merchant's state (docs/reliability.md)
ORDER = os.environ.get("RTML_SOAK_ORDER", "arrival")
PARALLELISM = int(os.environ.get("RTML_SOAK_PARALLELISM", "1"))
EVENTS_PER_DAY = 6000  # the demo's density of event time
MAX_RATE_EVENTS = 20_000
KILL_EVERY_S = int(os.environ.get("RTML_SOAK_KILL_EVERY_S", "240"))
FIRST_KILL_S = int(os.environ.get("RTML_SOAK_FIRST_KILL_S", "150"))
BROKER_DOWN_S = 15
SAMPLE_S = 10
WARMUP_S = int(
    os.environ.get("RTML_SOAK_WARMUP_S", "300")
)  # excluded from the memory and checkpoint criteria
SLICE_S = 300  # latency per slice
TICK_S = 0.01
TIMER_BYTES = 16  # a timer as the heap backend writes it: timestamp and key-group framing
MAX_MEMORY_GROWTH = 0.10
CHECKPOINT_TOLERANCE = 0.20
MAX_RECOVERY_S = 60.0


def _max_rate(cfg, broker, cluster) -> float:
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("soak-max.")
    ensure_topics(c)
    events = card_events(60, MAX_RATE_EVENTS, MAX_RATE_EVENTS / EVENTS_PER_DAY)
    produce(c, c.kafka.topics.events, [json.dumps(e) for e in events])
    submit(
        c,
        scoring_target(broker, "soak-max.", ORDER, PARALLELISM, bounded=True),
        cluster.address,
        detached=False,
    )
    return throughput(append_times(c, c.kafka.topics.scores, c.schema.event_id).values())


class Sampler:
    """Checkpoints, memory and restarts of the job, every ``SAMPLE_S``, in a thread."""

    def __init__(self, rest: FlinkRest, cluster, job: str, t0: float) -> None:
        self.rest, self.cluster, self.job, self.t0 = rest, cluster, job, t0
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def _memory(self) -> tuple[int, int]:
        jvm = py = 0
        for p in self.cluster.taskmanager_processes():
            try:
                jvm += p.memory_info().rss
                py += sum(ch.memory_info().rss for ch in p.children(recursive=True))
            except Exception:  # exited meanwhile (a kill)
                continue
        return jvm, py

    def _largest_key(self) -> dict[str, int]:
        """The feature stages' gauges of their largest key (a hot merchant's waiting events
        and stored bytes), at their maximum over the subtasks, by metric name."""
        out: dict[str, int] = {}
        for metrics in self.rest.operator_metrics(self.job, "_largest_key").values():
            for name, value in metrics.items():
                stage = name.split(".rtml.")[0].split("features_by_")[-1][:40]
                out[f"{stage}.{name.rsplit('.', 1)[-1]}"] = int(value)
        return out

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            s: dict = {"t": round(time.monotonic() - self.t0, 1)}
            try:
                cp = self.rest.latest_checkpoint(self.job) or {}
                s.update(
                    checkpoint_id=cp.get("id"),
                    checkpoint_bytes=cp.get("state_size"),
                    checkpoint_ms=cp.get("end_to_end_duration"),
                    restarts=self.rest.restarts(self.job),
                )
                s["largest_key"] = self._largest_key()
            except Exception as e:  # the REST API is the JobManager's: up through every fault
                s["error"] = str(e)[:200]
            s["jvm_rss"], s["python_rss"] = self._memory()
            self.samples.append(s)


class Faults:
    """The TaskManager kills, each in its own thread: kill, wait until the job runs again,
    start a fresh TaskManager."""

    def __init__(self, rest: FlinkRest, cluster, job: str, t0: float) -> None:
        self.rest, self.cluster, self.job, self.t0 = rest, cluster, job, t0
        self.kills: list[dict] = []
        self._threads: list[threading.Thread] = []

    def kill_taskmanager(self) -> None:
        th = threading.Thread(target=self._kill, name="soak-kill", daemon=True)
        th.start()
        self._threads.append(th)

    def _kill(self) -> None:
        restarts = self.rest.restarts(self.job)
        tm = taskmanager_running(self.rest, self.job)
        proc = self.cluster.taskmanager_process(tm)
        at = time.time()
        k = {"t": round(time.monotonic() - self.t0, 1), "at_ms": int(at * 1000)}
        k["processes"] = kill_tree(proc)
        self.kills.append(k)
        wait_for(lambda: running_again(self.rest, self.job, restarts), 300, "the job to restart")
        k["running_ms"] = int(time.time() * 1000)
        self.cluster.add_taskmanager()

    def join(self) -> None:
        for th in self._threads:
            th.join(600)


def _produce(c, broker, records: list[str], rate: float, faults: Faults, t0: float) -> dict:
    """Send ``records`` at ``rate``; kill a TaskManager every ``KILL_EVERY_S`` (not in the
    last two minutes) and kill -9 the broker once, mid-run, restarting it after
    ``BROKER_DOWN_S``. Returns when and how long the broker was down."""
    from kafka import KafkaProducer

    def producer():
        return KafkaProducer(
            bootstrap_servers=c.kafka.bootstrap_servers,
            acks="all",
            linger_ms=5,
            **client_settings(c),
        )

    duration = len(records) / rate
    kills_at = [t for t in range(FIRST_KILL_S, int(duration) - 120, KILL_EVERY_S)]
    broker_at = duration / 2 + KILL_EVERY_S / 2  # between two kills
    restart: dict = {}
    p = producer()
    sent, paused, start = 0, 0.0, time.monotonic()
    while sent < len(records):
        elapsed = time.monotonic() - start - paused
        if kills_at and elapsed >= kills_at[0]:
            kills_at.pop(0)
            faults.kill_taskmanager()
        if not restart and elapsed >= broker_at:
            p.flush()
            p.close()
            down = time.monotonic()
            restart["t"] = round(down - t0, 1)
            broker.kill()
            time.sleep(BROKER_DOWN_S)
            broker.start()
            p = producer()
            restart["down_s"] = round(time.monotonic() - down, 1)
            paused += time.monotonic() - down
            continue
        due = min(len(records), int(elapsed * rate) + 1)
        for r in records[sent:due]:
            p.send(c.kafka.topics.events, r.encode())
        sent = due
        time.sleep(TICK_S)
    p.flush()
    p.close()
    return restart


def _latency_slices(polled, in_times: dict[str, int], t0_ms: int) -> list[dict]:
    """p50/p99 per ``SLICE_S`` of input append time: when the reader first saw each score,
    minus its event's append time."""
    by_slice: dict[int, list[int]] = {}
    seen: set[str] = set()
    for rec in polled:
        eid = event_id_of(rec.value, "event_id")
        if eid is None or eid in seen or eid not in in_times:
            continue
        seen.add(eid)
        by_slice.setdefault((in_times[eid] - t0_ms) // (SLICE_S * 1000), []).append(
            rec.poll_ms - in_times[eid]
        )
    out = []
    for k in sorted(by_slice):
        lat = sorted(by_slice[k])
        out.append(
            {
                "slice_start_s": k * SLICE_S,
                "n": len(lat),
                "p50_ms": quantile(lat, 0.5),
                "p99_ms": quantile(lat, 0.99),
                "max_ms": lat[-1],
            }
        )
    return out


RECOVERY_SETTLE_S = 60  # after the job runs again, its new TaskManager's memory settles


def _recovering(t: float, faults: Faults, t0: float) -> bool:
    """Whether a sample at ``t`` (seconds since ``t0``) falls between a kill and a minute
    after the job ran again."""
    for k in faults.kills:
        running = k.get("running_ms")
        end = k["t"] + (300 if running is None else (running - k["at_ms"]) / 1000)
        if k["t"] <= t <= end + RECOVERY_SETTLE_S:
            return True
    return False


def _expected_state_bytes(c, events: list[dict]) -> tuple[int, int]:
    """(keys, bytes) of the replay's final state as the job stores it."""
    replay = FeatureReplay.for_job(c)
    for e in events:
        replay.observe(e)
    total = 0
    for (_, key), st in replay.state.items():
        total += len(pickle.dumps(StoredFeatures.of(st, timer=0))) + len(key.encode()) + 2
        total += 2 * (TIMER_BYTES + len(key.encode()))
    return len(replay.state), total


def _largest_key_over_time(steady: list[dict]) -> dict[str, list[int]]:
    """Per gauge of the largest key (a hot merchant's stored bytes and waiting events): its
    maximum over the first and over the last fifth of the steady samples."""
    out = {}
    names = sorted({k for s in steady for k in s.get("largest_key", {})})
    fifth = max(1, len(steady) // 5)
    for name in names:
        first = [s["largest_key"][name] for s in steady[:fifth] if name in s.get("largest_key", {})]
        last = [s["largest_key"][name] for s in steady[-fifth:] if name in s.get("largest_key", {})]
        out[name] = [max(first, default=0), max(last, default=0)]
    return out


def _plot(samples, slices, kills, broker, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(4, 1, figsize=(9, 12), sharex=True)
    t = [s["t"] / 60 for s in samples]
    ax[0].plot(
        [s["slice_start_s"] / 60 + SLICE_S / 120 for s in slices],
        [s["p99_ms"] for s in slices],
        "o-",
        label="p99",
    )
    ax[0].plot(
        [s["slice_start_s"] / 60 + SLICE_S / 120 for s in slices],
        [s["p50_ms"] for s in slices],
        "o-",
        label="p50",
    )
    ax[0].set_ylabel("latency ms (per 5 min)")
    ax[0].set_yscale("log")
    ax[0].legend()
    ax[1].plot(
        t, [(s.get("checkpoint_bytes") or 0) / 2**20 for s in samples], label="checkpoint MiB"
    )
    ax[1].plot(t, [(s.get("checkpoint_ms") or 0) / 1000 for s in samples], label="checkpoint s")
    ax[1].legend()
    ax[2].plot(t, [s["jvm_rss"] / 2**20 for s in samples], label="TaskManager JVMs MiB")
    ax[2].plot(t, [s["python_rss"] / 2**20 for s in samples], label="Python workers MiB")
    ax[2].legend()
    names = sorted({k for s in samples for k in s.get("largest_key", {})})
    for name in names:
        values = [s.get("largest_key", {}).get(name) for s in samples]
        scale = 1024 if name.endswith("state_bytes_largest_key") else 1
        unit = "KiB" if scale == 1024 else "events"
        ax[3].plot(t, [None if v is None else v / scale for v in values], label=f"{name} ({unit})")
    ax[3].set_ylabel("largest key")
    ax[3].set_xlabel("minutes")
    if names:
        ax[3].legend(fontsize=7)
    for a in ax:
        for k in kills:
            a.axvline(k["t"] / 60, color="red", alpha=0.3)
        if broker:
            a.axvline(broker["t"] / 60, color="black", alpha=0.4)
    fig.suptitle("rtml soak: kill -9 TaskManager (red), broker restart (black)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def test_soak_half_load_with_kills_and_a_broker_restart(cfg, broker, model, cluster):
    assert cfg.job.delivery == "exactly-once"
    max_rate = _max_rate(cfg, broker, cluster)
    rate = float(RATE) if RATE else max_rate / 2
    asked = int(rate * MINUTES * 60)
    events = card_events(61, asked, asked / EVENTS_PER_DAY)
    n = len(events)  # the scenario gives a few less than asked (measured: 99,934 of 100,000)
    records = [json.dumps(e) for e in events]

    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("soak.")
    ensure_topics(c)
    t = c.kafka.topics
    rest = FlinkRest(cluster.address)
    reader = LiveReader(c, t.scores).start()
    job = submit(
        c, scoring_target(broker, "soak.", ORDER, PARALLELISM), cluster.address, detached=True
    )
    rest.wait_for_state(job, {"RUNNING"}, 120)
    t0 = time.monotonic()
    t0_ms = int(time.time() * 1000)
    sampler = Sampler(rest, cluster, job, t0).start()
    faults = Faults(rest, cluster, job, t0)
    try:
        broker_restart = _produce(c, broker, records, rate, faults, t0)
        faults.join()
        wait_for(
            lambda: committed_offsets(c, [t.events])[t.events] >= n,
            900,
            "the job to consume and checkpoint every event",
            every=2,
        )
        restarts = rest.restarts(job)
        jobs_stop(cluster.address, job, None, drain=True)
    except BaseException:
        if rest.job(job)["state"] in ("RUNNING", "RESTARTING", "CREATED"):
            rest.cancel(job)
        raise
    finally:
        samples = sampler.stop()
    run_s = time.monotonic() - t0
    polled = reader.stop()

    in_times = append_times(c, t.events, c.schema.event_id)
    slices = _latency_slices(polled, in_times, t0_ms)
    first_poll_after = sorted(p.poll_ms for p in polled)
    recoveries = []
    for k in faults.kills:
        nxt = next((x for x in first_poll_after if x >= k.get("running_ms", 1 << 62)), None)
        k["recovery_s"] = None if nxt is None else round((nxt - k["at_ms"]) / 1000, 1)
        recoveries.append(k["recovery_s"])
    replayed = in_event_time_order(events) if ORDER == "event-time" else events
    keys, expected_bytes = _expected_state_bytes(c, replayed)
    late = [s for s in samples if s["t"] >= WARMUP_S and s.get("checkpoint_bytes")]
    # memory in steady state: after the warm-up, and outside each recovery (a killed
    # TaskManager's memory is gone until its replacement has run the job for a while)
    steady = [s for s in samples if s["t"] >= WARMUP_S and not _recovering(s["t"], faults, t0)]
    mem = [s["jvm_rss"] + s["python_rss"] for s in steady]
    fifth = max(1, len(mem) // 5)
    growth = statistics.median(mem[-fifth:]) / statistics.median(mem[:fifth]) - 1 if mem else None
    ckpt = [s["checkpoint_bytes"] for s in late]
    largest = _largest_key_over_time(steady)
    figures = {
        "minutes": MINUTES,
        "run_seconds": round(run_s, 1),
        "parallelism": PARALLELISM,
        "feature_order": ORDER,
        "delivery": "exactly-once",
        "max_rate_eps": round(max_rate, 1),
        "rate_eps": round(rate, 1),
        "events": n,
        "taskmanager_kills": len(faults.kills),
        "broker_restart": broker_restart,
        "job_restarts": restarts,
        "recovery_s": recoveries,
        "latency_slices": slices,
        "keys": keys,
        "expected_state_bytes": expected_bytes,
        "checkpoint_bytes_min_max": [min(ckpt), max(ckpt)] if ckpt else None,
        "checkpoint_ms_max": max((s.get("checkpoint_ms") or 0) for s in late) if late else None,
        "memory_growth": None if growth is None else round(growth, 4),
        "memory_steady_mb_first_last": [
            round(statistics.median(mem[:fifth]) / 2**20),
            round(statistics.median(mem[-fifth:]) / 2**20),
        ]
        if mem
        else None,
        "largest_key_first_last_fifth": largest,
        "samples": samples,
        "kills": faults.kills,
    }
    try:
        figures.update(check_exactly_once(c, replayed))
    finally:
        record_figures("soak", figures)
        _plot(samples, slices, faults.kills, broker_restart, figures_dir() / "soak.png")
    assert restarts >= len(faults.kills) > 0
    assert all(r is not None and r < MAX_RECOVERY_S for r in recoveries), recoveries
    assert growth is not None and growth < MAX_MEMORY_GROWTH, growth
    assert ckpt and all(
        abs(b - expected_bytes) <= CHECKPOINT_TOLERANCE * expected_bytes for b in ckpt
    ), (min(ckpt), max(ckpt), expected_bytes)
