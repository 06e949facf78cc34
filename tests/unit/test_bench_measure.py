"""The bench's arithmetic: throughput from append times, nearest-rank quantiles (checked
against numpy), per-event latency from the live reader's first polls (with missing outputs),
CPU of processes that exit, state per key, stage counts from `rtml plan`, the run plan, the
targets, and the table and plot over a whole result."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtml.cli.bench.measure import (
    Polled,
    ProcessSampler,
    event_id_of,
    first_seen,
    latency,
    quantile,
    state_bytes_per_key,
    throughput,
)
from rtml.cli.bench.report import print_table, write_plot
from rtml.cli.bench.stages import parse_python_stages
from rtml.cli.commands.bench import (
    ALO,
    EO,
    LOADS,
    SPECS,
    keys_held,
    latency_plan,
    ratios,
    targets,
)


def test_throughput_is_records_over_the_span_of_append_times():
    # 11 outputs, one every 100 ms: 10 intervals in 1 s
    assert throughput(range(5_000, 6_001, 100)) == pytest.approx(10.0)
    assert math.isnan(throughput([7]))
    assert math.isnan(throughput([]))


@pytest.mark.parametrize("q", [0.01, 0.5, 0.9, 0.99, 1.0])
def test_quantile_is_nearest_rank_like_numpy_inverted_cdf(q):
    values = sorted(np.random.default_rng(3).exponential(40.0, size=997).tolist())
    assert quantile(values, q) == pytest.approx(np.quantile(values, q, method="inverted_cdf"))


def test_latency_pairs_events_by_id_and_counts_the_missing():
    ins = {"a": 1_000, "b": 1_010, "c": 1_020, "d": 1_030}
    outs = {"a": 1_005, "b": 1_050, "c": 1_021, "x": 9_999}
    lat = latency(ins, outs)
    assert (lat.n, lat.missing) == (3, 1)
    assert (lat.p50_ms, lat.p99_ms, lat.max_ms) == (5, 40, 40)


def test_event_id_of_malformed_records_is_none():
    assert event_id_of('{"event_id": "e1", "x": 1}', "event_id") == "e1"
    assert event_id_of(b'{"event_id": "e1"', "event_id") is None
    assert event_id_of("[1, 2]", "event_id") is None
    assert event_id_of(b"\xff\xfe", "event_id") is None
    assert event_id_of('{"event_id": 7}', "event_id") is None


def test_state_per_key_sums_the_keyed_vertices_only():
    state = {"features by account_id -> Map": 3_000, "features by merchant_id -> score": 1_000}
    state["Source: events -> parse"] = 10_000
    assert state_bytes_per_key(state, ("features by",), 8) == 500
    assert math.isnan(state_bytes_per_key(state, ("features by",), 0))


def _polled(t: int, eid: str | None, append: int = 0) -> Polled:
    body = b"{not json" if eid is None else f'{{"event_id": "{eid}", "score": 0.1}}'.encode()
    return Polled(t, append, body)


def test_first_seen_keeps_each_ids_first_poll_and_its_append_time():
    polled = [
        _polled(1_000, "a", 990),
        _polled(1_000, None),  # the floor forwards malformed records: no id
        _polled(1_020, "b", 1_001),
        _polled(1_500, "a", 1_400),  # resent (at-least-once): counted from its first sighting
    ]
    polls, appends = first_seen(polled, "event_id")
    assert polls == {"a": 1_000, "b": 1_020}
    assert appends == {"a": 990, "b": 1_001}


def test_latency_as_polled_is_first_poll_minus_the_events_append_time():
    ins = {"a": 900, "b": 1_000, "late": 1_100}
    polls, appends = first_seen([_polled(1_000, "a", 950), _polled(1_050, "b", 1_040)], "event_id")
    seen = latency(ins, polls)
    assert (seen.n, seen.missing, seen.p50_ms, seen.p99_ms) == (2, 1, 50, 100)
    assert latency(ins, appends).p99_ms == 50  # the append-time figure is kept alongside


class _Proc:
    """A psutil.Process stand-in whose CPU time the test sets, and that can exit."""

    def __init__(self, pid: int, cpu: float, rss: int = 100) -> None:
        self.pid, self.cpu, self.rss, self.gone = pid, cpu, rss, False

    def children(self, recursive: bool = False):
        return []

    def cpu_times(self):
        if self.gone:
            raise ProcessLookupError(self.pid)
        return type("T", (), {"user": self.cpu, "system": 0.0})()

    def memory_info(self):
        if self.gone:
            raise ProcessLookupError(self.pid)
        return type("M", (), {"rss": self.rss})()


def test_process_sampler_keeps_the_cpu_of_a_process_that_exited():
    old, new = _Proc(1, cpu=10.0), _Proc(2, cpu=0.0, rss=300)
    procs = [old]
    s = ProcessSampler(lambda: procs, interval_s=3600).start()  # samples at start and stop only
    old.cpu, procs = 12.0, [old, new]
    new.cpu = 3.0
    s._sample()  # what the sampling thread does every interval
    new.gone = True  # exits: its last sampled 3 s still count
    s.stop()
    assert s.cpu_seconds == pytest.approx(2.0 + 3.0)  # since start: 2 s of one, 3 of the other
    assert s.cpu_cores > 0
    assert s.peak_rss == 400


@pytest.mark.parametrize(
    ("stdout", "stages"),
    [
        ('{"python_stages": 4, "vertices": []}', 4),
        ('==> planning\n{\n  "job": "x",\n  "python_stages": 2\n}\n', 2),
        ('{"python_stages": true}', None),
        ('{"other": 1} {"python_stages": 3}', 3),
        ("rtml: error: no such command", None),
        ("", None),
    ],
)
def test_python_stages_from_the_plans_json(stdout, stages):
    assert parse_python_stages(stdout) == stages


def test_latency_plan_is_the_curve_plus_the_half_load_extras():
    plan = latency_plan(eo_checkpoint_ms=1_000)
    assert plan[-1].job == "scoring-thread" and plan[-1].load == 0.5  # thread mode last
    plan = plan[:-1]
    assert [s.load for s in plan] == sorted(s.load for s in plan)  # one paced input per load
    runs = {(s.job, s.load, s.delivery) for s in plan}
    assert len(runs) == len(plan)
    for load in LOADS:
        assert {("floor", load, ALO), ("scoring", load, ALO), ("peer", load, ALO)} <= runs
    half = {(s.job, s.delivery, s.checkpoint_interval_ms) for s in plan if s.load == 0.5}
    assert {
        ("naive", ALO, None),
        ("scoring", EO, 1_000),
        ("scoring-one-entity", ALO, None),
        ("scoring-event-time", ALO, None),
    } <= half
    assert not any(s.job == "naive" and s.load != 0.5 for s in plan)


def test_keys_held_the_floor_keys_by_the_first_entity_only(cfg):
    keys = {"account": 900, "merchant": 250}
    assert keys_held(SPECS["floor"], cfg, keys) == 900
    assert keys_held(SPECS["scoring"], cfg, keys) == 1_150
    assert keys_held(SPECS["peer"], cfg, keys) == 1_150


def _point(load, delivery, p99, checkpoint=None):
    return {
        "load": load,
        "offered_eps": load * 1_000,
        "delivery": delivery,
        "checkpoint_interval_ms": checkpoint,
        "n": 900,
        "missing": 0,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "max_ms": p99,
        "append_p50_ms": p99 / 2,
        "append_p99_ms": p99,
        "cpu_cores": 1.0,
        "rss_mb": 500.0,
    }


def _job(key, eps, curve=(), state=math.nan, stages=None):
    return {
        "job": key,
        "label": SPECS[key].label,
        "config": "cards.toml",
        "part": SPECS[key].part,
        "python_stages": stages,
        "events": 20_000,
        "throughput_eps": eps,
        "cpu_cores_at_max": 1.0,
        "rss_mb_at_max": 900.0,
        "curve": list(curve),
        "cpu_cores_at_load": 0.8,
        "rss_mb_at_load": 800.0,
        "state_bytes_per_key": state,
    }


def _result(a, b, c, d, c1, floor_p99, c_p99, eo_p99, c1_p99, per_key):
    jobs = {
        "floor": _job("floor", a, [_point(x, ALO, floor_p99) for x in LOADS], 4, 2),
        "naive": _job("naive", b, [_point(0.5, ALO, 90_000)], 300, 5),
        "scoring": _job(
            "scoring",
            c,
            [_point(x, ALO, c_p99) for x in LOADS] + [_point(0.5, EO, eo_p99, 1_000)],
            per_key,
            4,
        ),
        "peer": _job("peer", d, [_point(x, ALO, 20) for x in LOADS], 500),
        "scoring-one-entity": _job("scoring-one-entity", c1, [_point(0.5, ALO, c1_p99)], 600, 2),
        "floor-one-entity": _job("floor-one-entity", a, stages=2),
    }
    r = {
        "when": "2026-12-01T00:00:00+0000",
        "git_rev": "abc1234",
        "events_preloaded": 20_000,
        "naive_events_preloaded": 5_000,
        "max_rate_eps": 1_000.0,
        "max_rate_from": "(c)'s throughput",
        "loads": list(LOADS),
        "seconds_per_load": 30.0,
        "latency_measure": "first poll",
        "checkpoint_interval_ms": 5_000,
        "eo_checkpoint_interval_ms": 1_000,
        "bundle_time_ms": 1_000,
        "jobs": jobs,
    }
    r["ratios"] = ratios(jobs)
    r["targets"] = targets(r)
    return r


def test_targets_report_each_figure_its_limit_and_whether_it_is_met():
    t = _result(1_000, 200, 800, 900, 900, 30, 40, 1_040, 45, 1_500)["targets"]
    assert all(v["met"] for v in t.values()), t
    t = _result(1_000, 300, 400, 900, 400, 30, 100, 1_200, 100, 2_100)["targets"]
    assert not any(v["met"] for v in t.values()), t
    assert t["throughput >= 0.5 x floor"]["measured"] == pytest.approx(0.4)
    assert t["p99 at half load, exactly-once <= 1000 + 50 ms"]["limit"] == 1_050


def test_latency_targets_allow_three_times_the_floors_own_p99():
    # the floor itself takes 400 ms at p99: the pipeline's 1,100 ms misses 50 ms but is
    # within 3 x the floor; exactly-once within the checkpoint plus that allowance
    t = _result(1_000, 200, 800, 900, 900, 400, 1_100, 2_100, 1_300, 1_500)["targets"]
    assert not t["p99 at half load, at-least-once <= 50 ms"]["met"]
    row = t["p99 at half load, at-least-once <= 3 x floor's p99"]
    assert (row["limit"], row["met"]) == (1_200, True)
    assert not t["p99 at half load, exactly-once <= 1000 + 50 ms"]["met"]
    row = t["p99 at half load, exactly-once <= 1000 + 3 x floor's p99"]
    assert (row["limit"], row["met"]) == (2_200, True)
    assert t["one entity: p99 at half load <= 3 x floor's p99"]["met"] is False


def test_targets_of_jobs_not_measured_are_not_met():
    r = _result(1_000, 200, 800, 900, 900, 30, 40, 1_040, 45, 1_500)
    del r["jobs"]["scoring-one-entity"], r["jobs"]["floor-one-entity"]
    r["jobs"]["scoring"]["curve"] = [
        p for p in r["jobs"]["scoring"]["curve"] if p["delivery"] == ALO
    ]
    r["ratios"] = ratios(r["jobs"])
    t = targets(r)
    assert math.isnan(r["ratios"]["c1_over_a"])
    assert not t["one entity: throughput >= 0.5 x floor"]["met"]
    assert not t["p99 at half load, exactly-once <= 1000 + 50 ms"]["met"]
    assert t["throughput >= 3 x naive"]["met"]


def test_table_and_plot_show_every_job(tmp_path, capsys):
    r = _result(1_000, 200, 800, 900, 900, 30, 40, 1_040, 45, 1_500)
    print_table(r)
    out = capsys.readouterr().out
    for job in r["jobs"].values():
        assert job["label"] in out
    assert "latency-load curve" in out and "75% (750/s)" in out
    write_plot(r, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_the_exactly_once_runs_checkpoint_interval_reaches_the_job(tmp_path):
    from flink_jobs.job import JOB_OVERRIDES, parse_args
    from rtml.cli.commands.job import JobTarget

    args = JobTarget(tmp_path / "c.toml", checkpoint_interval_ms=1_000).args()
    assert args[args.index("--checkpoint-interval-ms") + 1] == "1000"
    assert "checkpoint_interval_ms" in JOB_OVERRIDES
    assert parse_args(args).checkpoint_interval_ms == 1_000
    assert "--checkpoint-interval-ms" not in JobTarget(tmp_path / "c.toml").args()
