"""Flink tier: the job's feature operators on the embedded MiniCluster equal the offline path.

The events (with out-of-order, late and malformed records mixed in) go through the very
functions the job wires (``events_for_features`` and the feature stages of ``add_features``,
dead letters and late events travelling as tagged records until the last stage splits them
off); every feature of every event must equal what ``FeatureReplay`` (the training path)
computes for the same input, in both feature orders.
"""

from __future__ import annotations

import json
import math
import sys

import pytest

from rtml.scenarios.cards import ScenarioOptions, generate

pytestmark = pytest.mark.flink


def scenario_records():
    sc = generate(
        ScenarioOptions(seed=5, events=400, accounts=25, merchants=10, days=0.5, bad_fraction=0.03)
    )
    events = [dict(e) for e in sc.events]
    # out of order within the allowed lateness (1h) and one far too late for its account
    events[50]["event_time"] -= 20 * 60_000
    events[120]["event_time"] -= 40 * 60_000
    events[300]["event_time"] -= 6 * 3_600_000
    raws = [json.dumps(e) for e in events]
    for pos, raw, _ in reversed(sc.bad):
        raws.insert(pos, raw)
    return raws, events, len(sc.bad)


# small bundles and a tiny Python state cache: state is written back to the JVM every few
# events (rtml's pipelined commit) and mostly read back from it (the StoredFeatures bytes,
# not the live object); two workers: the second entity's operator in its own Python process
TIGHT = {
    "python.fn-execution.bundle.size": "7",
    "python.state.cache-size": "3",
    "taskmanager.numberOfTaskSlots": "2",
}


@pytest.mark.parametrize(
    "bounded,tight,order",
    [
        (True, False, "arrival"),
        (True, True, "arrival"),
        (True, False, "event-time"),
        (False, False, "event-time"),
    ],
    ids=["arrival", "arrival-small-bundles", "event-time-bounded", "event-time-unbounded"],
)
def test_flink_features_equal_offline_replay(cfg, bounded, tight, order):
    """Unbounded jobs add idleness detection to the watermark strategy: in event-time order
    the records must still be timed by their event-time field (PyFlink's ``with_idleness``
    once dropped the assigner and the job ran on Kafka append times)."""
    from dataclasses import replace

    from pyflink.common import Configuration, Types
    from pyflink.datastream import StreamExecutionEnvironment

    from flink_jobs.graph import add_features, events_for_features
    from udfs.features.offline import FeatureReplay
    from udfs.flink.records import to_json_nan_safe

    raws, events, n_bad = scenario_records()
    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    if tight:
        for k, v in TIGHT.items():
            conf.set_string(k, v)
    cfg = replace(cfg, job=replace(cfg.job, feature_order=order))
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(1)
    raw = env.from_collection(raws, type_info=Types.STRING())
    enriched, late, dead = add_features(events_for_features(raw, cfg, bounded), cfg)
    out = enriched.map(to_json_nan_safe, output_type=Types.STRING())
    tagged = out.map(lambda s: "E" + s, output_type=Types.STRING()).union(
        dead.map(lambda s: "D" + s, output_type=Types.STRING()),
        late.map(lambda s: "L" + s, output_type=Types.STRING()),
    )
    rows = list(tagged.execute_and_collect())

    got = {}
    n_dead = n_late = 0
    for r in rows:
        if r[0] == "E":
            rec = json.loads(r[1:])
            got[rec["event_id"]] = rec
        elif r[0] == "D":
            n_dead += 1
        else:
            n_late += 1
    replay = FeatureReplay.for_job(cfg)
    if order == "event-time":
        # the whole input is read before the first watermark passes it (a bounded collection,
        # or the idleness time-out): every event is applied in (event time, id) order
        events = sorted(events, key=lambda e: (e["event_time"], e["event_id"]))
    expected = {e["event_id"]: replay.observe(e) for e in events}
    expected_late = sum(1 for v in expected.values() if v is None)

    assert n_dead == n_bad
    assert n_late == expected_late == (1 if order == "arrival" else 0)
    assert set(got) == {k for k, v in expected.items() if v is not None}
    mismatches = []
    for eid, feats in expected.items():
        if feats is None:
            continue
        for name, want in feats.items():
            have = got[eid][name]
            have = math.nan if have is None else have
            if not (math.isnan(want) and math.isnan(have)) and want != have:
                mismatches.append((eid, name, want, have))
    assert not mismatches, mismatches[:10]
