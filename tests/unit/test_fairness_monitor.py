"""The monitors' pure logic (udfs/fairness_monitor.py, udfs/drift_sample.py), property-tested
over interleavings of predictions, labels and watermarks, restarts from snapshots, and bucket
counts: the final fairness and quality report of every window equals a batch computation on
the same events, the reports are the same at any bucket count, and a window's drift sample is
its bottom-k by stable key at any bucket count."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.monitor_driver import DriftDriver, FairnessDriver
from udfs.drift_sample import bottom_k
from udfs.fairness import FairnessWindow
from udfs.fairness_monitor import FairnessSettings
from udfs.quality import QualityWindow
from udfs.sampling import stable_key
from udfs.windows import window_start, windows_for

SIZE, TIMEOUT = 10, 25


def _settings(
    slide: int = SIZE, cap: int = 10_000, fields: tuple[str, ...] = ("group",)
) -> FairnessSettings:
    return FairnessSettings(
        size=SIZE,
        slide=slide,
        timeout=TIMEOUT,
        min_count=2,
        four_fifths=0.8,
        group_fields=fields,
        time_field="t",
        id_field="id",
        positive=1,
        favourable=0,
        model_version="1",
        quality_cap=cap,
        quality_margin=0.05,
    )


events = st.lists(
    st.tuples(
        st.integers(0, 45),  # event time
        st.sampled_from(["a", "b", "c"]),
        st.floats(0, 1, allow_nan=False),  # score
        st.one_of(st.none(), st.tuples(st.integers(0, 1), st.integers(0, TIMEOUT))),  # label
    ),
    max_size=40,
)


def _records(evs):
    preds, labels = [], []
    for i, (t, g, score, lab) in enumerate(evs):
        eid = f"e{i}"
        preds.append({"id": eid, "t": t, "group": g, "score": score, "flagged": score >= 0.5})
        if lab is not None:
            labels.append({"event_id": eid, "label": lab[0], "label_time": t + lab[1]})
    return preds, labels


def _run(s, preds, labels, order, ticks, restarts, buckets):
    """Deliver the records in ``order``, advancing the watermark (to just below the earliest
    record not yet delivered: no record is late) where ``ticks`` says, restarting from
    snapshots where ``restarts`` says; then the end of the stream."""
    records = [("p", r, r["t"]) for r in preds] + [("l", r, r["label_time"]) for r in labels]
    stream = [records[i] for i in order]
    d = FairnessDriver(s, buckets, held_out=0.9)
    for i, (kind, r, _) in enumerate(stream):
        d.prediction(r) if kind == "p" else d.label(r)
        if ticks[i % len(ticks)]:
            rest = [x[2] for x in stream[i + 1 :]]
            d.advance(min(rest) - 1 if rest else 10**6)
        if restarts[i % len(restarts)]:
            d.restart()
    d.advance(2**62)
    return d


def _batch(s, preds, labels):
    """The final report's figures per window, computed at once from every event."""
    label = {x["event_id"]: x["label"] for x in labels}
    out = {}
    for p in preds:
        for ws in windows_for(p["t"], s.size, s.slide):
            fw, qw = out.setdefault(ws, (FairnessWindow(), QualityWindow(s.quality_cap)))
            fav = not p["flagged"]
            fw.add_prediction(p["group"], fav)
            if p["id"] in label:
                positive = label[p["id"]] == 1
                fw.add_outcome(p["group"], fav, not positive)
                qw.add(p["id"], p["score"], p["flagged"], positive, p["group"])
    return out


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=150, deadline=None)
@given(
    events,
    st.sampled_from([SIZE, 5]),
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
    st.sampled_from([1, 3, 16]),
)
def test_final_reports_equal_a_batch_computation(evs, slide, ticks, restarts, rnd, buckets):
    s = _settings(slide)
    preds, labels = _records(evs)
    order = list(range(len(preds) + len(labels)))
    rnd.shuffle(order)
    d = _run(s, preds, labels, order, ticks, [r and rnd.random() < 0.3 for r in restarts], buckets)
    reports = d.reports()
    final = {r["window_start"]: r for r in reports if r["status"] == "final"}
    assert len(final) == sum(r["status"] == "final" for r in reports), "one final per window"
    batch = _batch(s, preds, labels)
    assert set(final) == set(batch)
    for ws, (fw, qw) in batch.items():
        want = fw.report(s.min_count, s.four_fifths)
        got = final[ws]
        assert _same({k: got[k] for k in want}, want), ws
        assert _same(got["quality"], qw.report(s.min_count, 0.9, s.quality_margin)), ws
    # per window: provisional first, final last, and a report only when labels came in
    by_window = {}
    for r in reports:
        by_window.setdefault(r["window_start"], []).append(r)
    for rs in by_window.values():
        assert rs[0]["status"] == "provisional" and rs[-1]["status"] == "final"
        updates = [r["labelled"] for r in rs[1:-1]]
        assert updates == sorted(set(updates)) and rs[0]["labelled"] not in updates


@settings(max_examples=100, deadline=None)
@given(events, st.lists(st.booleans(), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_reports_and_alerts_are_the_same_at_any_bucket_count(evs, ticks, rnd):
    s = _settings()
    preds, labels = _records(evs)
    order = list(range(len(preds) + len(labels)))
    rnd.shuffle(order)
    runs = [_run(s, preds, labels, order, ticks, [False], b) for b in (1, 4, 16)]
    emitted = [sorted(repr(sorted(e.record.items())) for e in d.emitted) for d in runs]
    assert emitted[0] == emitted[1] == emitted[2]


def test_fairness_windows_merge_associatively():
    parts = []
    for seed in range(3):
        w = FairnessWindow()
        for i in range(20):
            w.add_prediction("ab"[(i * seed) % 2], (i + seed) % 3 == 0)
            if i % 2:
                w.add_outcome("ab"[(i + seed) % 2], i % 3 == 0, i % 5 == 0)
        parts.append(w)
    a, b, c = parts
    left = a.merge(b).merge(c).snapshot()
    assert left == a.merge(b.merge(c)).snapshot() == c.merge(a).merge(b).snapshot()
    assert sum(v[0] for v in left.values()) == 60


rows = st.lists(
    st.tuples(st.integers(0, 39), st.integers(0, 10_000)), max_size=80, unique_by=lambda r: r[1]
)


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(1, 6), st.sampled_from([1, 3, 16]), st.randoms(use_true_random=False))
def test_drift_sample_is_the_bottom_k_of_the_whole_window(rs, cap, buckets, rnd):
    rnd.shuffle(rs)
    d = DriftDriver(SIZE, cap, buckets)
    for ts, n in rs:
        d.row(ts, f"id{n}", {"x": n})
        if rnd.random() < 0.2:
            d.advance(-1)
    d.advance(2**62)
    by_window: dict[int, list] = {}
    for ts, n in rs:
        by_window.setdefault(window_start(ts, SIZE), []).append(
            (stable_key(f"id{n}"), f"id{n}", {"x": n})
        )
    assert set(d.samples) == set(by_window)
    for ws, all_rows in by_window.items():
        sample = d.samples[ws]
        assert [tuple(r) for r in sample.rows] == bottom_k(all_rows, cap)
        assert sample.seen == len(all_rows)
        assert sample.first_event <= min(ts for ts, _ in rs if window_start(ts, SIZE) == ws)
        if buckets == 1:
            assert sample.first_event == min(ts for ts, _ in rs)


@settings(max_examples=100, deadline=None)
@given(
    events,
    st.lists(st.sampled_from(["n", "s"]), min_size=40, max_size=40),
    st.randoms(use_true_random=False),
)
def test_intersectional_views_equal_a_batch_computation_per_view(evs, regions, rnd):
    """With two sensitive fields, the final report holds the first field's groups as before,
    and per further field and for the intersection a report of its own, each computed as a
    batch computation on that view's cells would (min-count gate per cell)."""
    s = _settings(fields=("group", "region"))
    preds, labels = _records(evs)
    for p, region in zip(preds, regions, strict=False):
        p["region"] = region
    order = list(range(len(preds) + len(labels)))
    rnd.shuffle(order)
    d = _run(s, preds, labels, order, [True, False], [False], 3)
    final = {r["window_start"]: r for r in d.reports() if r["status"] == "final"}
    label = {x["event_id"]: x["label"] for x in labels}
    for ws, got in final.items():
        views = {
            "group": FairnessWindow(),
            "region": FairnessWindow(),
            "group&region": FairnessWindow(),
        }
        for p in preds:
            if ws not in windows_for(p["t"], s.size, s.slide):
                continue
            cells = {
                "group": p["group"],
                "region": p["region"],
                "group&region": f"{p['group']}&{p['region']}",
            }
            for view, cell in cells.items():
                views[view].add_prediction(cell, not p["flagged"])
                if p["id"] in label:
                    views[view].add_outcome(cell, not p["flagged"], label[p["id"]] != 1)
        want = views["group"].report(s.min_count, s.four_fifths)
        assert _same(
            {k: got[k] for k in want if k not in ("alerts", "watch")},
            {k: v for k, v in want.items() if k not in ("alerts", "watch")},
        )
        assert set(got["by_attribute"]) == {"region", "group&region"}
        alerts = list(want["alerts"])
        for view in ("region", "group&region"):
            w = views[view].report(s.min_count, s.four_fifths)
            assert _same(got["by_attribute"][view], w), view
            alerts += [f"{view}:{a}" for a in w["alerts"]]
        assert got["alerts"] == alerts
