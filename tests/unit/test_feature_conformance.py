"""Conformance suite: every aggregation must pass every check here.

Checks: snapshot/restore round trip mid-stream, empty and single-event cases, window expiry,
out-of-order handling within the lateness, late events, bounded state, and property tests
(hypothesis) against the brute-force reference in ``feature_reference``.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtml.core.config import Entity
from rtml.core.errors import StateVersionError
from rtml.core.featurespec import AGGREGATIONS, FeatureSet, FeatureSpec
from tests.unit.feature_reference import reference_features
from udfs.features.engine import EntityFeatures
from udfs.features.offline import FeatureReplay

MIN = 60_000
HOUR = 60 * MIN
WINDOWS = (5 * MIN, HOUR)


def spec_for(agg: str, window: int = HOUR) -> FeatureSpec:
    needs_field, needs_window = AGGREGATIONS[agg]
    field = ("cat" if agg == "distinct" else "x") if needs_field else None
    return FeatureSpec("e", agg, field, window if needs_window else None)


def feature_set(specs, **kw) -> FeatureSet:
    return FeatureSet(
        specs=tuple(specs),
        tiles_per_window=kw.get("tiles", 12),
        distinct_capacity=kw.get("cap", 64),
        allowed_lateness_ms=kw.get("lateness", 10 * MIN),
        ttl_ms=kw.get("ttl", 30 * HOUR),
    )


ALL_SPECS = [
    spec_for(a, w) for a in AGGREGATIONS for w in (WINDOWS if AGGREGATIONS[a][1] else (None,))
]
ALL = feature_set(ALL_SPECS)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-6)


def run_engine(events, fs):
    st_: dict[str, EntityFeatures] = {}
    out = []
    for ev in events:
        s = st_.get(ev["k"])
        if s is None or s.is_expired(ev["ts"]):
            s = st_[ev["k"]] = EntityFeatures(fs)
        if s.is_late(ev["ts"]):
            out.append(None)
            continue
        out.append(s.observe(ev["ts"], ev))
        # the job snapshots after every event: restore must give the same state
        st_[ev["k"]] = EntityFeatures.restore(fs, s.snapshot())
    return out


def assert_match(events, fs):
    got = run_engine(events, fs)
    want = reference_features(events, fs)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert (g is None) == (w is None), f"event {i}: late mismatch"
        if g is None:
            continue
        for name in w:
            assert same(g[name], w[name]), (
                f"event {i} {events[i]}: {name} engine={g[name]} reference={w[name]}"
            )


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
class TestEveryAggregation:
    def test_empty_state(self, spec):
        fs = feature_set([spec])
        f = EntityFeatures(fs).features(1_000_000, {"x": 3.0, "cat": "a"})
        expected_zero = spec.agg in ("count", "sum", "distinct")
        assert (f[spec.name] == 0.0) if expected_zero else math.isnan(f[spec.name])

    def test_single_event_then_query(self, spec):
        fs = feature_set([spec])
        s = EntityFeatures(fs)
        s.observe(1_000_000, {"x": 3.0, "cat": "a"})
        f = s.features(1_000_000 + MIN, {"x": 6.0, "cat": "b"})
        expected = {
            "count": 1,
            "sum": 3,
            "mean": 3,
            "std": 0,
            "min": 3,
            "max": 3,
            "zscore": math.nan,
            "ratio": 2,
            "distinct": 1,
            "last": 3,
            "time_since_last": 60,
        }[spec.agg]
        assert same(f[spec.name], float(expected))

    def test_snapshot_round_trip_is_exact(self, spec):
        fs = feature_set([spec])
        s = EntityFeatures(fs)
        for i in range(50):
            s.observe(1_000_000 + i * 37_000, {"x": float(i % 7), "cat": str(i % 5)})
        r = EntityFeatures.restore(fs, s.snapshot())
        assert r.snapshot() == s.snapshot()
        probe = {"x": 2.5, "cat": "z"}
        assert all(
            same(a, b)
            for a, b in zip(
                r.features(3_000_000, probe).values(),
                s.features(3_000_000, probe).values(),
                strict=True,
            )
        )

    def test_window_expiry(self, spec):
        if spec.window_ms is None:
            pytest.skip("lifetime aggregation")
        fs = feature_set([spec])
        s = EntityFeatures(fs)
        s.observe(0, {"x": 5.0, "cat": "a"})
        later = s.features(spec.window_ms * 3, {"x": 1.0, "cat": "b"})
        assert (
            later[spec.name] == 0.0
            if spec.agg in ("count", "sum", "distinct")
            else math.isnan(later[spec.name])
        )

    def test_out_of_order_within_lateness_matches_reference(self, spec):
        fs = feature_set([spec])
        ts = [
            0,
            10 * 1000,
            5 * 1000,
            200 * 1000,
            150 * 1000,
            400 * 1000,
            390 * 1000,
            30 * MIN,
            29 * MIN,
        ]
        events = [
            {"k": "a", "ts": HOUR + t, "x": float(i * 3 % 5), "cat": str(i % 3)}
            for i, t in enumerate(ts)
        ]
        assert_match(events, fs)

    def test_late_event_is_rejected_and_not_counted(self, spec):
        fs = feature_set([spec], lateness=MIN)
        s = EntityFeatures(fs)
        s.observe(HOUR, {"x": 1.0, "cat": "a"})
        assert s.is_late(HOUR - 2 * MIN)
        assert not s.is_late(HOUR - 30_000)


def test_state_is_bounded_by_tiles_not_events():
    fs = ALL
    s = EntityFeatures(fs)
    sizes = []
    for i in range(20_000):
        s.observe(i * 1000, {"x": float(i % 13), "cat": str(i % 200)})
        if i % 5000 == 4999:
            sizes.append(len(s.snapshot()))
    assert max(sizes) - min(sizes) < 200, sizes  # flat, not growing with events
    # a ring keeps its window's tiles plus the tiles the allowed lateness can still reach
    assert all(
        len(r.tiles) <= fs.tiles_per_window + -(-fs.allowed_lateness_ms // r.width_ms) + 1
        for r in s.rings.values()
    )
    assert all(len(v.seen) <= fs.distinct_capacity for v in s.recent.values())


def test_distinct_is_bounded_and_a_lower_bound_beyond_capacity():
    fs = feature_set([spec_for("distinct")], cap=8)
    s = EntityFeatures(fs)
    for i in range(100):
        s.observe(i * 1000, {"cat": f"v{i}"})
    assert s.features(100_000, {"cat": "x"})["e_cat_distinct_1h"] == 8.0


def test_constant_series_has_zero_std_and_nan_zscore():
    fs = feature_set([spec_for("std"), spec_for("zscore")])
    s = EntityFeatures(fs)
    for i in range(40):
        s.observe(i * 1000, {"x": 0.1})
    f = s.features(41_000, {"x": 0.1})
    assert f["e_x_std_1h"] == 0.0 and math.isnan(f["e_x_zscore_1h"])


def test_expired_key_starts_fresh():
    fs = feature_set([spec_for("count"), spec_for("time_since_last")], ttl=2 * HOUR)
    r = FeatureReplay(fs, (Entity("e", "k"),), "ts")
    r.observe({"k": "a", "ts": 0, "x": 1.0})
    f = r.observe({"k": "a", "ts": 3 * HOUR, "x": 1.0})
    assert math.isnan(f["e_time_since_last"])


def test_unknown_state_version_is_refused_with_a_clear_message():
    doc = json.loads(EntityFeatures(ALL).snapshot())
    doc["v"] = 99
    with pytest.raises(StateVersionError, match="layout version 99"):
        EntityFeatures.restore(ALL, json.dumps(doc).encode())


def test_restore_migrates_by_name_when_features_change():
    old = feature_set([spec_for("count"), spec_for("sum")])
    new = feature_set([spec_for("count"), spec_for("max"), spec_for("count", 5 * MIN)])
    s = EntityFeatures(old)
    for i in range(5):
        s.observe(1_000_000 + i * 1000, {"x": float(i)})
    m = EntityFeatures.restore(new, s.snapshot())
    f = m.features(1_010_000, {"x": 0.0})
    assert f["e_count_1h"] == 5.0  # kept
    assert f["e_x_max_1h"] == 4.0  # derived from the kept moments of x over 1h
    assert f["e_count_5m"] == 0.0  # a new window starts empty


# -- property tests against the brute-force reference ----------------------------------------
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=-12 * MIN, max_value=20 * MIN),  # negative: out of order / late
        st.one_of(
            st.none(),
            st.floats(min_value=-1e4, max_value=1e4, allow_nan=False).map(lambda v: round(v, 3)),
        ),
        st.sampled_from(["p", "q", "r", "s"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events_strategy)
def test_engine_equals_brute_force_reference(raw):
    t = 10 * HOUR
    events = []
    for key, dt, x, cat in raw:
        t += dt
        events.append({"k": key, "ts": t, "x": x, "cat": cat})
    assert_match(events, ALL)


def test_a_resent_event_is_a_duplicate_within_the_lateness_and_survives_a_snapshot():
    fs = feature_set([spec_for("count")])
    s = EntityFeatures(fs)
    s.observe(1_000_000, {"x": 1.0}, "ev-1")
    s.observe(1_001_000, {"x": 1.0})  # observed without an id: not remembered
    assert s.is_duplicate("ev-1") and not s.is_duplicate("ev-2")
    r = EntityFeatures.restore(fs, s.snapshot())
    assert r.is_duplicate("ev-1")
    assert r.snapshot() == s.snapshot()
    # once the key has moved past the allowed lateness the id is forgotten (a resend is late)
    r.observe(1_000_000 + fs.allowed_lateness_ms + 2_000, {"x": 1.0}, "ev-3")
    assert not r.is_duplicate("ev-1") and r.is_duplicate("ev-3")
    assert r.is_late(1_000_000)


def test_snapshots_from_before_deduplication_restore():
    fs = feature_set([spec_for("count")])
    s = EntityFeatures(fs)
    s.observe(1_000_000, {"x": 1.0})
    doc = json.loads(s.snapshot())
    assert "i" not in doc
    assert (
        EntityFeatures.restore(fs, json.dumps(doc).encode()).features(1_001_000, {})["e_count_1h"]
        == 1.0
    )


def test_replay_gives_a_resent_event_no_features_and_counts_it_once():
    fs = feature_set([spec_for("count")])
    r = FeatureReplay(fs, (Entity("e", "k"),), "ts", "id")
    assert r.observe({"id": "a", "k": "1", "ts": 1_000}) == {"e_count_1h": 0.0}
    assert r.observe({"id": "a", "k": "1", "ts": 1_000}) is None
    assert r.observe({"id": "b", "k": "1", "ts": 2_000}) == {"e_count_1h": 1.0}


def test_stored_features_pickle_as_their_snapshot_and_stay_live_between_events():
    """What the job keeps in Flink state: the live object between events (no decode per
    event), and exactly the snapshot bytes (plus a class reference) when Flink serializes it."""
    import pickle

    from udfs.features.stored import StoredFeatures

    fs = ALL
    s = EntityFeatures(fs)
    for i in range(20):
        s.observe(i * MIN, {"x": float(i), "cat": f"c{i % 3}"}, f"id-{i}")
    held = StoredFeatures.of(s)
    assert held.features(fs) is s  # the live object, not a copy

    data = pickle.dumps(held)
    assert len(data) < len(s.snapshot()) + 120  # the snapshot bytes and a class reference
    back = pickle.loads(data)
    restored = back.features(fs)
    assert restored is not s and restored.snapshot() == s.snapshot()
    assert back.features(fs) is restored  # restored once, then kept live
    assert pickle.loads(pickle.dumps(back)).snapshot() == s.snapshot()
    with pytest.raises(ValueError):
        StoredFeatures()


def test_stored_features_keep_their_expiry_timer_and_read_the_older_layout():
    """The operator's expiry timer travels with the bytes; state written before the timer
    was kept (a pickle of the class and the bytes alone) restores with no timer."""
    import pickle

    from udfs.features.stored import StoredFeatures

    s = EntityFeatures(ALL)
    s.observe(MIN, {"x": 1.0, "cat": "c0"}, "id-1")
    held = StoredFeatures.of(s, timer=86_400_000)
    back = pickle.loads(pickle.dumps(held))
    assert back.timer == 86_400_000 and back.features(ALL).snapshot() == s.snapshot()

    class Old:  # what PyFlink stored until the timer was kept: (class, (bytes,))
        def __reduce__(self):
            return (StoredFeatures, (s.snapshot(),))

    old = pickle.loads(pickle.dumps(Old()))
    assert isinstance(old, StoredFeatures) and old.timer is None
    assert old.features(ALL).snapshot() == s.snapshot()
