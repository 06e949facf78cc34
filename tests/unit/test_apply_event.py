"""The one apply-event rule (``udfs.features.apply``): what the job's stages and the offline
replay both call. Each outcome, and the order of the checks."""

from __future__ import annotations

from rtml.core.featurespec import FeatureSet, FeatureSpec
from udfs.features.apply import (
    Applied,
    Duplicate,
    Late,
    apply_event,
    event_order,
    in_event_time_order,
)

MIN = 60_000
FS = FeatureSet(
    specs=(FeatureSpec("e", "count", None, 60 * MIN),),
    tiles_per_window=12,
    distinct_capacity=8,
    allowed_lateness_ms=10 * MIN,
    ttl_ms=120 * MIN,
)
T0 = 1_767_225_600_000


def test_applied_then_counted():
    st, out = apply_event(None, FS, T0, {}, "a")
    assert isinstance(out, Applied) and out.features == {"e_count_1h": 0.0}
    st, out = apply_event(st, FS, T0 + MIN, {}, "b")
    assert out == Applied({"e_count_1h": 1.0})


def test_late_beyond_the_allowed_lateness_and_not_counted():
    st, _ = apply_event(None, FS, T0 + 30 * MIN, {}, "a")
    st, out = apply_event(st, FS, T0 + 19 * MIN, {}, "b")  # 11 min older than the newest
    assert out == Late(T0 + 30 * MIN)
    st, out = apply_event(st, FS, T0 + 21 * MIN, {}, "c")  # within the lateness: applied
    assert out == Applied({"e_count_1h": 0.0})  # from the history before it: none


def test_duplicate_only_with_an_id_and_never_counted_twice():
    st, _ = apply_event(None, FS, T0, {}, "a")
    st, out = apply_event(st, FS, T0 + MIN, {}, "a")
    assert out == Duplicate("a")
    st, out = apply_event(st, FS, T0 + 2 * MIN, {}, None)  # a later entity: no dedupe
    assert out == Applied({"e_count_1h": 1.0})


def test_expired_state_starts_empty_before_the_lateness_check():
    st, _ = apply_event(None, FS, T0, {}, "a")
    st, out = apply_event(st, FS, T0 + 120 * MIN, {}, "a")  # TTL passed: a fresh key
    assert out == Applied({"e_count_1h": 0.0})


def test_event_order_is_time_then_id_whatever_the_arrival():
    events = [
        {"t": T0 + 2, "id": "a"},
        {"t": T0 + 1, "id": "z"},
        {"t": T0 + 1, "id": "b"},
    ]
    assert [e["id"] for e in in_event_time_order(events, "t", "id")] == ["b", "z", "a"]
    assert event_order(T0, "b") < event_order(T0, "z") < event_order(T0 + 1, "a")
