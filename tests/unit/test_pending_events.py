"""Event-time order's buffer (``PendingEvents``) and its place in a key's stored state.

The property: whatever order events arrive in and however the watermark advances, the
events come out once each, in (event time, event id) order, each when the watermark first
passes it; one timer is outstanding per key (registered when an event becomes the earliest
waiting with no earlier timer to fire, or after a timer fired with events still waiting),
so a backlog costs a timer per watermark advance, not per event. Snapshots round-trip.
"""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtml.core.errors import StateVersionError
from rtml.core.featurespec import FeatureSet, FeatureSpec
from udfs.features.engine import EntityFeatures
from udfs.features.pending import PendingEvents
from udfs.features.stored import StoredFeatures

events = st.lists(st.tuples(st.integers(0, 50), st.sampled_from(["a", "b", "c", "d"])), max_size=60)
# after each arrival, the watermark moves on by this much (often not at all)
steps = st.lists(st.sampled_from([0, 0, 0, 1, 3, 10]), min_size=60, max_size=60)


def drive(arrivals, advances):
    """A key's operator: hold each event past the watermark, fire the one registered timer
    when the watermark reaches it; returns (applied in order, timer registrations)."""
    p = PendingEvents()
    wm = -1
    registered: list[int] = []
    applied: list[tuple[int, str, int]] = []
    for n, ((ts, eid), adv) in enumerate(zip(arrivals, advances, strict=False)):
        if ts > wm:
            t = p.add(ts, eid, {"ts": ts, "id": eid, "n": n})
            if t is not None:
                registered.append(t)
        else:
            applied.append((ts, eid, n))  # behind the watermark: applied at once
        wm += adv
        while registered and min(registered) <= wm:
            registered.remove(min(registered))
            due, t = p.pop_due(wm)
            applied += [(e["ts"], e["id"], e["n"]) for _, e in due]
            if t is not None:
                registered.append(t)
    due, _ = p.pop_due(10**9)
    applied += [(e["ts"], e["id"], e["n"]) for _, e in due]
    return applied, registered


@settings(max_examples=300, deadline=None)
@given(events, steps)
def test_waiting_events_come_out_once_in_event_time_order(arrivals, advances):
    applied, _ = drive(arrivals, advances)
    assert sorted(n for *_, n in applied) == list(range(len(arrivals)))  # each once
    # the events that waited come out in (time, id, arrival) order, and each only once the
    # watermark has passed it: the events a timer releases are never older than one an
    # earlier timer released
    wm, behind = -1, set()
    for n, ((ts, _), adv) in enumerate(zip(arrivals, advances, strict=False)):
        if ts <= wm:
            behind.add(n)
        wm += adv
    waited = [a for a in applied if a[2] not in behind]
    assert waited == sorted(waited)


@settings(max_examples=200, deadline=None)
@given(events, steps)
def test_no_event_waits_past_the_watermark_and_timers_stay_few(arrivals, advances):
    """The registered timers (a superseded later one stays registered, and fires for
    nothing) always include one at or before the earliest waiting event; registrations are
    at most one per event that arrives earlier than all waiting ones, plus one per firing."""
    p = PendingEvents()
    wm, registered, earliest_arrivals, firings = -1, [], 0, 0
    for (ts, eid), adv in zip(arrivals, advances, strict=False):
        if ts > wm:
            earliest_arrivals += p.earliest() is None or ts < p.earliest()
            if (t := p.add(ts, eid, {})) is not None:
                registered.append(t)
        wm += adv
        while any(t <= wm for t in registered):
            registered = [t for t in registered if t > wm]
            firings += 1
            _, t = p.pop_due(wm)
            if t is not None:
                registered.append(t)
        assert p.earliest() is None or p.earliest() > wm
        assert p.earliest() is None or min(registered) <= p.earliest()
    assert len(registered) + firings <= earliest_arrivals + firings * 2


def test_a_sorted_backlog_registers_one_timer_per_watermark_advance():
    p = PendingEvents()
    timers = [t for ts in range(1000) if (t := p.add(ts, "x", {})) is not None]
    assert timers == [0]  # the earliest only
    due, t = p.pop_due(499)
    assert [ts for ts, _ in due] == list(range(500)) and t == 500
    due, t = p.pop_due(10_000)
    assert len(due) == 500 and t is None and p.timer is None and not p


@settings(max_examples=100, deadline=None)
@given(events)
def test_snapshot_round_trips_with_the_order_of_application(arrivals):
    p = PendingEvents()
    for n, (ts, eid) in enumerate(arrivals):
        p.add(ts, eid, {"n": n, "x": 1.5})
    back = pickle.loads(pickle.dumps(p))
    assert back.timer == p.timer and back.snapshot() == p.snapshot()
    assert back.pop_due(10**9)[0] == p.pop_due(10**9)[0]


def test_an_unknown_snapshot_version_is_refused_with_what_to_do():
    with pytest.raises(StateVersionError, match="version 99.*reads version 1"):
        PendingEvents.restore(b'{"v":99,"t":null,"e":[]}')


FS = FeatureSet(specs=(FeatureSpec("k", "count", None, 3_600_000),))


def _features() -> EntityFeatures:
    s = EntityFeatures(FS)
    s.observe(60_000, {}, "id-1")
    return s


def test_stored_state_carries_the_waiting_events_and_reads_both_earlier_layouts():
    s = _features()
    p = PendingEvents()
    p.add(120_000, "id-2", {"event_id": "id-2"})
    held = StoredFeatures.of(s, timer=86_400_000, pending=p)
    back = pickle.loads(pickle.dumps(held))
    assert not back.legacy and back.timer == 86_400_000
    assert back.pending is not None and back.pending.snapshot() == p.snapshot()
    assert back.features(FS).snapshot() == s.snapshot()
    # no waiting events: nothing of the buffer in the bytes
    plain = pickle.loads(pickle.dumps(StoredFeatures.of(s, pending=PendingEvents())))
    assert plain.pending is None and not plain.legacy

    class WithTimer:  # the layout of 969cad7: (class, (bytes, timer)); events in a list state
        def __reduce__(self):
            return (StoredFeatures, (s.snapshot(), 86_400_000))

    class BytesOnly:  # before the timer was kept
        def __reduce__(self):
            return (StoredFeatures, (s.snapshot(),))

    for old in (WithTimer(), BytesOnly()):
        got = pickle.loads(pickle.dumps(old))
        assert got.legacy and got.pending is None
        assert got.features(FS).snapshot() == s.snapshot()
