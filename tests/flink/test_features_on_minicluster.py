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

from rtml.cli.scenarios.cards import ScenarioOptions, generate
from tests.feature_values import same_feature

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


def _configuration():
    """The MiniCluster's configuration: rtml's job jar (event-time order's timestamp assigner
    runs in the JVM)."""
    from pyflink.common import Configuration

    from deploy import jars

    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    conf.set_string("pipeline.jars", jars.job_jar().resolve().as_uri())
    return conf


def _timed(raw, cfg):
    """Event-time order's watermarks, as the events source makes them from Kafka."""
    from flink_jobs.stages import with_event_time

    return with_event_time(raw, cfg) if cfg.job.feature_order == "event-time" else raw


@pytest.mark.parametrize(
    "bounded,tight,order,pipelined",
    [
        (True, False, "arrival", True),
        (True, True, "arrival", True),
        (True, True, "arrival", False),
        (True, False, "event-time", True),
        (False, False, "event-time", True),
    ],
    ids=[
        "arrival",
        "arrival-small-bundles",
        "arrival-small-bundles-pyflink-commit",
        "event-time-bounded",
        "event-time-unbounded",
    ],
)
def test_flink_features_equal_offline_replay(cfg, bounded, tight, order, pipelined):
    """In event-time order the records are timed by their event-time field, bounded or not.
    ``pipelined`` off: PyFlink's own bundle-end state writes (``[job]
    pipelined_state_writes = false``), with state written back nearly every event."""
    from dataclasses import replace

    from pyflink.common import Types
    from pyflink.datastream import StreamExecutionEnvironment

    from flink_jobs.stages import add_features, events_for_features
    from udfs.features.offline import FeatureReplay
    from udfs.flink.records import to_json_nan_safe

    raws, events, n_bad = scenario_records()
    conf = _configuration()
    if tight:
        for k, v in TIGHT.items():
            conf.set_string(k, v)
    cfg = replace(cfg, job=replace(cfg.job, feature_order=order, pipelined_state_writes=pipelined))
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(1)
    raw = _timed(env.from_collection(raws, type_info=Types.STRING()), cfg)
    enriched, late, dead = add_features(events_for_features(raw, cfg), cfg)
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


def dense_records():
    """Events in event-time order, dense (two a second over 1,200 keys' worth of accounts
    and merchants), with malformed records and resent events mixed in: many events are
    within the out-of-orderness bound of each other, so the watermark releases them in
    groups, and at parallelism > 1 the merchant stage receives them interleaved from
    several account subtasks in an order that depends on timing."""
    sc = generate(
        ScenarioOptions(
            seed=8, events=3000, accounts=40, merchants=12, days=1500 / 86_400, bad_fraction=0.02
        )
    )
    events = [dict(e) for e in sc.events]
    raws = [json.dumps(e) for e in events]
    for pos in range(100, len(raws), 400):  # resent: a dead letter in every order
        raws.insert(pos + 3, raws[pos])
    for pos, raw, _ in reversed(sc.bad):
        raws.insert(pos, raw)
    return raws, events


def _event_time_features(cfg, raws, parallelism: int) -> tuple[dict, int]:
    from dataclasses import replace

    from pyflink.common import Types
    from pyflink.datastream import StreamExecutionEnvironment

    from flink_jobs.stages import add_features, events_for_features
    from udfs.flink.records import to_json_nan_safe

    conf = _configuration()
    conf.set_string("taskmanager.numberOfTaskSlots", str(parallelism))
    # watermarks every 20 ms and small bundles: the run lasts seconds, so the watermark
    # passes the events in many steps while they are still arriving
    conf.set_string("pipeline.auto-watermark-interval", "20 ms")
    conf.set_string("python.fn-execution.bundle.size", "50")
    conf.set_string("python.fn-execution.bundle.time", "10")
    cfg = replace(cfg, job=replace(cfg.job, feature_order="event-time"))
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(parallelism)
    raw = _timed(env.from_collection(raws, type_info=Types.STRING()), cfg)  # spread over parsers
    enriched, late, dead = add_features(events_for_features(raw, cfg), cfg)
    out = enriched.map(to_json_nan_safe, output_type=Types.STRING()).union(
        dead.map(lambda s: "D", output_type=Types.STRING()),
        late.map(lambda s: "L", output_type=Types.STRING()),
    )
    got, n_dead = {}, 0
    for r in out.execute_and_collect():
        if r == "D":
            n_dead += 1
        else:
            assert r != "L", "no event of this input is late"
            rec = json.loads(r)
            got[rec["event_id"]] = rec
    return got, n_dead


def test_event_time_features_are_the_same_at_parallelism_1_2_and_4(cfg):
    """Event-time order is exact at any parallelism: the same input at parallelism 1, 2 and
    4 gives every event the same features, equal to the offline replay over the events in
    (event time, event id) order. The record a feature stage emits from its timer carries the
    timer's timestamp; a stage that ordered by it instead of the event-time field would give
    the merchant features of the earlier attempt (issue #20), and fail here at 2 and 4."""
    from udfs.features.offline import FeatureReplay

    raws, events = dense_records()
    n_bad = len(raws) - len(events)
    replay = FeatureReplay.for_job(cfg)
    expected = {
        e["event_id"]: replay.observe(e)
        for e in sorted(events, key=lambda e: (e["event_time"], e["event_id"]))
    }
    assert all(v is not None for v in expected.values())
    for parallelism in (1, 2, 4):
        got, n_dead = _event_time_features(cfg, raws, parallelism)
        assert n_dead == n_bad, parallelism
        assert set(got) == set(expected), parallelism
        mismatches = [
            (eid, name, want, got[eid][name])
            for eid, feats in expected.items()
            for name, want in feats.items()
            if not same_feature(want, got[eid][name])
        ]
        assert not mismatches, (parallelism, len(mismatches), mismatches[:5])
