"""Operating the job on a real session cluster (two TaskManagers): parallelism 2 gives the
same results as parallelism 1; stops with a savepoint mid-stream and resumes at parallelism
2, then 1 again (1 -> 2 -> 1) give the same results as an uninterrupted run; the job's metrics reach the REST API and
the Prometheus reporter.

Compared per event: score, model version and every model input (the features); per window:
the final fairness report and the drift verdict with every column's score. The scaled and
rescaled runs use ``feature_order = "event-time"`` (features applied in event-time order once
the watermark passes); the reference applies them on arrival at parallelism 1.
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_client import ensure_topics, produce, read_topic
from rtml.cli.commands.data import produce_scenario, scenario_options
from rtml.cli.commands.job import JobTarget, jobs_metrics, jobs_stop, submit
from rtml.cli.scenarios.cards import generate
from tests.conftest import DEMO_CONFIG
from tests.integration.waiting import job_detail, wait_for
from udfs.drift_sample import DriftSample, bottom_k
from udfs.sampling import stable_key
from udfs.windows import window_start

pytestmark = pytest.mark.integration

EVENTS = 5000


def _scenario():
    return scenario_options(
        seed=21,
        events=EVENTS,
        days=1.5,
        drift_at_h=24.0,
        drift_size=1.5,
        bias=0.25,
        bad_fraction=0.01,
    )


def _rounded(v):
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def _results(c) -> dict:
    t = c.kafka.topics
    scores = read_topic(c, t.scores)
    fairness = [f for f in read_topic(c, t.fairness) if f["status"] == "final"]
    drift = read_topic(c, t.drift)
    for d in drift:
        d.pop("report_id", None)
    _check_samples(c, scores, drift)
    return {
        "n_scores": len(scores),
        "scores": {s["event_id"]: _rounded(s) for s in scores},
        "fairness": {f["window_start"]: _rounded(f) for f in fairness},
        "n_fairness_final": len(fairness),
        "drift": {d["window_start"]: _rounded(d) for d in drift},
        "n_drift": len(drift),
    }


def _check_samples(c, scores: list[dict], drift: list[dict]) -> None:
    """Each drift event's sample against the run's own scored events (computed here, apart
    from the job): the window's event count and the digest of its bottom-k event ids. A run
    whose monitor saw other events than it scored fails here, named, before any comparison."""
    size, cap = c.monitoring.window_ms, c.monitoring.drift_sample_cap
    windows: dict[int, list] = {}
    for s in scores:
        eid = str(s[c.schema.event_id])
        windows.setdefault(window_start(s[c.schema.event_time], size), []).append(
            (stable_key(eid), eid, None)
        )
    for d in drift:
        rows = windows.get(d["window_start"], [])
        expected = DriftSample(cap, bottom_k(rows, cap), len(rows))
        seen = (d["window_events"], d["sample_ids_crc32"])
        assert seen == (expected.seen, expected.ids_digest()), (
            f"{c.kafka.topics.drift}: window {d['window_start']} sampled {seen} (events, ids "
            f"digest), its scored events give {(expected.seen, expected.ids_digest())}"
        )


def _assert_same(got: dict, ref: dict) -> None:
    if got != ref:
        _report_diff(got, ref)
    assert got["scores"] == ref["scores"]
    assert got["fairness"] == ref["fairness"]
    assert got["drift"] == ref["drift"], _drift_outline(got, ref)
    assert got == ref


def _drift_outline(got: dict, ref: dict) -> str:
    """Per drift window, the figures that tell a different sample from a different verdict
    (got vs reference): status, rows, events seen, the sampled ids' digest, drift share."""
    keys = ("status", "rows", "window_events", "sample_ids_crc32", "drift_share")
    lines = [f"drift events: got {got['n_drift']}, reference {ref['n_drift']}"]
    for ws in sorted(set(got["drift"]) | set(ref["drift"])):
        g, r = got["drift"].get(ws, {}), ref["drift"].get(ws, {})
        mark = "" if g == r else "  <-- differs"
        lines.append(
            f"{ws}: got {[g.get(k) for k in keys]} reference {[r.get(k) for k in keys]}{mark}"
        )
    return "\n".join(lines)


def _report_diff(got: dict, ref: dict) -> None:
    """Print which per-event fields differ, and how often (shown when the test fails)."""
    diffs: dict[str, int] = {}
    for eid, s in ref["scores"].items():
        g = got["scores"].get(eid)
        if g is None:
            diffs["<missing>"] = diffs.get("<missing>", 0) + 1
            continue
        for k in set(s["inputs"]) | set(g["inputs"]):
            if s["inputs"].get(k) != g["inputs"].get(k):
                diffs[k] = diffs.get(k, 0) + 1
        if s["score"] != g["score"]:
            diffs["score"] = diffs.get("score", 0) + 1
    print("per-event differences:", diffs, "of", len(ref["scores"]))
    for kind in ("fairness", "drift"):
        for ws in sorted(set(got[kind]) | set(ref[kind])):
            g, r = got[kind].get(ws, {}), ref[kind].get(ws, {})
            keys = sorted(k for k in set(g) | set(r) if g.get(k) != r.get(k))
            if keys:
                print(f"{kind} window {ws} differs in", {k: (g.get(k), r.get(k)) for k in keys})


def _prepared(cfg, broker, prefix: str, feature_order: str = "event-time"):
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix(prefix)
    produced = produce_scenario(c, _scenario())
    target = JobTarget(
        Path(DEMO_CONFIG),
        bootstrap=broker.bootstrap,
        topic_prefix=prefix,
        bounded=True,
        feature_order=feature_order,
    )
    return c, produced, target


@pytest.fixture(scope="module")
def uninterrupted(cfg, broker, model, cluster):
    """The reference: one run at parallelism 1, start to end, features applied on arrival
    (the default; at parallelism 1 each key's events arrive in event-time order)."""
    c, produced, target = _prepared(cfg, broker, "op1.", feature_order="arrival")
    submit(c, target, cluster.address, detached=False)
    return produced, _results(c)


def test_reference_run_is_complete(uninterrupted):
    produced, ref = uninterrupted
    assert ref["n_scores"] == len(ref["scores"]) == produced.valid
    assert ref["n_fairness_final"] == len(ref["fairness"]) >= 6
    assert ref["n_drift"] == len(ref["drift"]) >= 6
    assert any(d["status"] == "drift" for d in ref["drift"].values())


def test_parallelism_2_on_two_taskmanagers_equals_parallelism_1(
    cfg, broker, model, cluster, uninterrupted
):
    _, ref = uninterrupted
    c, _, target = _prepared(cfg, broker, "op2.")
    job_id = submit(
        c,
        replace(target, parallelism=2),
        cluster.address,
        detached=False,
    )
    job = FlinkRest(cluster.address).job(job_id)
    assert job["state"] == "FINISHED"
    assert max(v["parallelism"] for v in job["vertices"]) == 2
    tms = {
        st["taskmanager-id"]
        for v in job["vertices"]
        for st in FlinkRest(cluster.address).get(f"/jobs/{job_id}/vertices/{v['id']}")["subtasks"]
    }
    assert len(tms) == 2, f"the job ran on {tms}, expected both TaskManagers"
    _assert_same(_results(c), ref)


def _prometheus_lines(ports: range) -> list[str]:
    lines: list[str] = []
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
                lines += r.read().decode().splitlines()
        except OSError:
            continue
    return [ln for ln in lines if ln.startswith("flink_taskmanager_job_task_operator_rtml_")]


def _records_in(rest: FlinkRest, job_id: str, topic: str = "events") -> int:
    """Raw records of one input (``events`` or ``labels``) read so far, from its parser's
    records_in (the events' parser is fused with the first key selector: its metric's name
    holds both)."""
    metrics = rest.operator_metrics(job_id, ".rtml.records_in")
    return int(
        sum(
            v
            for vals in metrics.values()
            for k, v in vals.items()
            if k.startswith(f"parse_and_validate_{topic}")
        )
    )


def _events_in(rest: FlinkRest, job_id: str) -> int:
    return _records_in(rest, job_id, "events")


# (parallelism, state backend) of each leg: scaled out onto RocksDB and back
RESCALE_LEGS = [(1, None), (2, "rocksdb"), (1, None)]
RESCALE_CUTS = (0.35, 0.7)  # where the stream stands at each stop, as a share of its records


# in `make test-slow` (minutes: two stops, three starts, a drain after every label is read),
# to keep `make test` within its time budget; it passes since event-time order's watermarks
# have no idleness (docs/latency.md, "Idle inputs and event-time order")
@pytest.mark.slow
def test_rescale_1_2_1_from_savepoints_equals_uninterrupted(
    cfg, broker, model, cluster, uninterrupted
):
    """The stream goes on while the job is down: the job reads the first 35% of the events
    (and the labels that have arrived by then) at parallelism 1, stops with a savepoint, the
    next 35% arrive, and it resumes from the savepoint at parallelism 2 on RocksDB; stopped
    again with a savepoint, it resumes at parallelism 1 for the rest. At the end it is
    stopped with ``drain`` (the end of the stream: every open window fires, as at the end of
    the bounded reference run). Event-time order: every score, feature, fairness report and
    drift verdict equals the uninterrupted run's."""
    produced, ref = uninterrupted
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("op3.")
    sc = generate(_scenario())
    raw = list(sc.raw_events())
    valid = {json.dumps(e) for e in sc.events}
    cuts = [0, *(int(len(raw) * f) for f in RESCALE_CUTS), len(raw)]
    labels = [json.dumps(lab) for lab in sc.labels]

    def labels_arrived(n_raw: int) -> int:
        cut_time = max(json.loads(r)["event_time"] for r in raw[:n_raw] if r in valid)
        return sum(1 for lab in sc.labels if lab["label_time"] <= cut_time)

    label_cuts = [0, *(labels_arrived(n) for n in cuts[1:-1]), len(labels)]
    ensure_topics(c)
    t = c.kafka.topics
    target = JobTarget(
        Path(DEMO_CONFIG),
        bootstrap=broker.bootstrap,
        topic_prefix="op3.",
        bounded=False,
        feature_order="event-time",
    )
    rest = FlinkRest(cluster.address)
    savepoint: str | None = None
    for leg, (parallelism, backend) in enumerate(RESCALE_LEGS):
        last = leg == len(RESCALE_LEGS) - 1
        # this leg's share of the stream arrives while the job is down
        produce(c, t.events, raw[cuts[leg] : cuts[leg + 1]])
        produce(c, t.labels, labels[label_cuts[leg] : label_cuts[leg + 1]])
        leg_target = replace(target, parallelism=parallelism)
        if backend:
            leg_target = replace(leg_target, state_backend=backend)
        job = submit(c, leg_target, cluster.address, detached=True, from_savepoint=savepoint)
        try:
            rest.wait_for_state(job, {"RUNNING"}, 120)
            assert max(v["parallelism"] for v in rest.job(job)["vertices"]) == parallelism
            if backend:
                used = rest.get(f"/jobs/{job}/checkpoints/config")["state_backend"]
                assert backend in used.lower(), used
            n_events = cuts[leg + 1] - cuts[leg]
            wait_for(
                lambda j=job, n=n_events: _events_in(rest, j) >= n,
                240,
                f"leg {leg + 1}'s {n_events} events read",
                detail=lambda j=job: job_detail(rest, j),
            )
            assert _events_in(rest, job) == n_events
            # a stop ends the sources where they are: the labels must all be read too (under
            # load the labels' reader can trail the events', back-pressured by the fairness
            # operator; measured: minutes after the events' one)
            n_labels = label_cuts[leg + 1] - label_cuts[leg]
            wait_for(
                lambda j=job, n=n_labels: _records_in(rest, j, "labels") >= n,
                600,
                f"leg {leg + 1}'s {n_labels} labels read",
                detail=lambda j=job: job_detail(rest, j),
            )
            if last:
                jobs_stop(cluster.address, job, None, drain=True)
            else:
                savepoint = jobs_stop(cluster.address, job, None)
                assert Path(savepoint.removeprefix("file:")).exists()
        finally:  # a job left running would hold the slots the next tests need
            if rest.job(job)["state"] == "RUNNING":
                rest.cancel(job)
        assert rest.job(job)["state"] == "FINISHED"
        if not last:
            done = len(read_topic(c, t.scores))
            assert 0 < done < produced.valid, "each stop should come mid-stream"

    got = _results(c)
    assert got["n_scores"] == produced.valid  # nothing lost, nothing scored twice
    _assert_same(got, ref)


def test_metrics_reach_the_rest_api_and_prometheus(cfg, broker, model, cluster):
    """An unbounded scoring job (it cannot finish before the metrics are read)."""
    c = cfg.with_bootstrap(broker.bootstrap).with_topic_prefix("op4.")
    produced = produce_scenario(
        c,
        scenario_options(
            seed=22,
            events=1000,
            days=0.5,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.25,
            bad_fraction=0.02,
        ),
    )
    target = JobTarget(
        Path(DEMO_CONFIG), bootstrap=broker.bootstrap, topic_prefix="op4.", part="scoring"
    )
    job_id = submit(c, target, cluster.address, detached=True)
    expected = {
        "records_in": produced.events,
        "dead_lettered": produced.bad,
        "scored": produced.valid,
    }

    def counted() -> dict | None:
        # each vertex's metrics reach the REST API on their own schedule: wait for all three
        m = jobs_metrics(cluster.address, job_id)
        flat = {
            k.split(".rtml.")[1]: v for vals in m.values() for k, v in vals.items() if ".rtml." in k
        }
        flat["lag"] = [v for vals in m.values() for k, v in vals.items() if "pendingRecords" in k]
        return flat if all(flat.get(k, 0) >= n for k, n in expected.items()) else None

    try:
        flat = wait_for(counted, 240, "every record counted in the REST API")
        # (late_events shows up with the first late event: PyFlink does not report unused counters)
        assert flat["records_in"] == produced.events
        assert flat["dead_lettered"] == produced.bad
        assert flat["scored"] == produced.valid
        assert flat["model_version"] == int(model.metadata.version)
        assert (
            0
            < flat["score_latency_p50_us"]
            <= flat["score_latency_p99_us"]
            <= flat["score_latency_max_us"]
        )
        # end-to-end latency (Kafka append time of the event to the score's emit, ms)
        assert 0 <= flat["e2e_latency_p50_ms"] <= flat["e2e_latency_p99_ms"]
        assert flat["e2e_latency_p99_ms"] <= flat["e2e_latency_max_ms"] < 600_000
        assert flat["lag"] and min(flat["lag"]) >= 0  # the sources' consumer lag, reported
        prom = wait_for(lambda: _prometheus_lines(range(19249, 19260)), 60, "Prometheus metrics")
        assert any(
            re.match(r"flink_taskmanager_job_task_operator_rtml_scored\{", ln) for ln in prom
        )
        assert any("rtml_score_latency_p99_us" in ln for ln in prom)
        assert any("rtml_e2e_latency_p99_ms" in ln for ln in prom)
    finally:
        FlinkRest(cluster.address).cancel(job_id)
