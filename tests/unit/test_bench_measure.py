"""The bench's arithmetic: throughput from append times, nearest-rank quantiles (checked
against numpy), per-event latency with missing outputs, state per key, the targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtml.bench.measure import event_id_of, latency, quantile, state_bytes_per_key, throughput
from rtml.commands.bench import ratios, targets


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


def _result(a, b, c, p99_alo, p99_eo, per_key):
    def job(eps, p99=math.nan, eo=math.nan, state=math.nan):
        lat = {"at-least-once": {"p99_ms": p99}, "exactly-once": {"p99_ms": eo}}
        return {"throughput_eps": eps, "latency": lat, "state_bytes_per_key": state}

    jobs = {"floor": job(a), "naive": job(b), "scoring": job(c, p99_alo, p99_eo, per_key)}
    r = {"jobs": jobs, "checkpoint_interval_ms": 5_000}
    r["ratios"] = ratios(jobs)
    return r


def test_targets_report_each_figure_and_whether_it_is_met():
    t = targets(_result(1_000, 200, 800, 40, 5_040, 1_500))
    assert all(v["met"] for v in t.values()), t
    t = targets(_result(1_000, 300, 600, 60, 5_100, 2_100))
    assert not any(v["met"] for v in t.values()), t
    assert t["throughput >= 0.7 x floor"]["measured"] == pytest.approx(0.6)
    assert "p99 <= 5050 ms at half load (exactly-once)" in t
